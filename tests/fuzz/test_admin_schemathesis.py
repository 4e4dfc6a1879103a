"""Schemathesis on the admin API's own OpenAPI document (`/admin/openapi.json`, read with the admin token): every
operation, with valid and invalid parameters and bodies, never answers 5xx and answers what its schema says."""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.fuzz.conftest import ADMIN_TOKEN, EXAMPLES, LogWatch, held

AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def test_admin_operations(target: Any, watch: LogWatch) -> None:
    real, _ = target
    assert httpx.get(real.url + "/admin/openapi.json").status_code == 401
    document = httpx.get(real.url + "/admin/openapi.json", headers=AUTH)
    assert document.status_code == 200
    schema = schemathesis.openapi.from_dict(document.json())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8  # keys, claims, budgets, breakers, spend, cases, ...
    called: set[str] = set()

    @settings(
        max_examples=EXAMPLES * 2,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=st.one_of([operation.as_strategy() for operation in operations]))
    def run(case: Any) -> None:
        response = case.call(base_url=real.url + "/admin", headers=AUTH)
        called.add(case.operation.label)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    run()
    assert len(called) >= len(operations) // 2
    logged = watch.lines()
    watch.bad.clear()
    assert logged == []
    assert held(real) == []
