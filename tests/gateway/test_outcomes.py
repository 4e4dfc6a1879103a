"""Outcomes through the gateway: `x-fiscus-outcome` on a session's last call, or the admin API afterwards; the
admin API's cost per outcome per case."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from .conftest import real_gateway

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]


def test_outcome_by_header_and_by_admin_api(tmp_path: Path, emulator_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FISCUS_ADMIN_TOKEN", "admin-secret")
    auth = {"authorization": "Bearer admin-secret"}
    with real_gateway(tmp_path, emulator_url, "budgets: []\n", "memory://") as real:
        client = real.openai()

        def call(session: str, **headers: str) -> None:
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                max_tokens=16,
                extra_headers={"x-fiscus-session": session, "x-fiscus-workflow": "parcels", **headers},
            )

        call("case-1")
        call("case-1", **{"x-fiscus-outcome": "resolved"})  # the header on the last call
        call("case-2")
        call("case-3")
        with httpx.Client(base_url=real.url + "/admin", headers=auth) as admin:
            made = admin.post("/sessions/case-2/outcome", json={"outcome": "escalated", "workflow": "parcels"})
            assert made.status_code == 201 and made.json()["source"] == "admin"
            assert admin.post("/sessions/case-2/outcome", json={"outcome": ""}).status_code == 422
            assert admin.post("/sessions/case-2/outcome", json={}).status_code == 422
            assert httpx.post(real.url + "/admin/sessions/x/outcome", json={"outcome": "a"}).status_code == 401
            real.events()  # every call settled and written
            cases = admin.get("/cases", params={"by": "workflow", "window": "day"})
            assert admin.get("/cases", params={"by": "colour"}).status_code == 400
        assert cases.status_code == 200, cases.text
        (parcels,) = cases.json()
        total = sum((e.cost.total for e in real.events()), Decimal(0))
        assert parcels["group"] == {"workflow": "parcels"} and parcels["cases"] == 3
        assert Decimal(parcels["cost_usd"]) == total
        by_outcome = {o["outcome"]: o for o in parcels["outcomes"]}
        assert set(by_outcome) == {"resolved", "escalated"}
        assert by_outcome["resolved"]["cases"] == 1
        assert Decimal(by_outcome["resolved"]["cost_per_outcome_usd"]) == total.quantize(Decimal("1E-12"))
        assert parcels["no_outcome"]["cases"] == 1
