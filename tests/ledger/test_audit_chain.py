"""The audit chain on every backend: an intact ledger verifies; an edited, deleted or inserted row is named."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from fiscus.audit import FindingKind, verify
from fiscus.events.policy_event import PolicyEvent, PolicyEventKind
from fiscus.ledger import Ledger, open_ledger
from fiscus.ledger.chain import event_payload, link_hash
from fiscus.ledger.migrations import migrations

from .conftest import T0, EventFactory


def raw(url: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run SQL on the ledger's database behind the ledger's back (`?` placeholders on both backends)."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def _filled(ledger: Ledger, make_event: EventFactory, n: int = 6) -> list[str]:
    events = [make_event(team="growth", agent="triage") for _ in range(n)]
    assert ledger.append(events[:3]) == 3
    assert ledger.append(events[1:]) == n - 3  # a retried batch: the known ids leave no gap in the chain
    return [e.id for e in events]


def kinds(ledger: Ledger) -> list[tuple[str, str | None]]:
    return [(str(f.kind), f.row_id) for f in verify(ledger).findings]


def test_an_intact_ledger_verifies(ledger: Ledger, make_event: EventFactory) -> None:
    _filled(ledger, make_event)
    assert ledger.record_policy(PolicyEvent("abc123", source="policy.yaml"))
    ledger.append([make_event()])
    result = verify(ledger)
    assert result.ok, result.findings
    assert (result.rows, result.chains) == (8, 1)
    (head,) = result.heads
    assert head.seq == 8


def test_each_writer_has_its_own_chain(ledger_url: str, make_event: EventFactory) -> None:
    with open_ledger(ledger_url) as one, open_ledger(ledger_url) as two:
        one.append([make_event(), make_event()])
        two.append([make_event()])
        one.append([make_event()])
        two.append([make_event()])
        result = verify(one)
    assert result.ok and result.chains == 2 and sorted(h.seq for h in result.heads) == [2, 3]


def test_an_edited_row_is_named(ledger: Ledger, ledger_url: str, make_event: EventFactory) -> None:
    ids = _filled(ledger, make_event)
    raw(ledger_url, "UPDATE cost_events SET input_usd = '0.0001', team = 'search' WHERE id = ?", (ids[2],))
    assert kinds(ledger) == [("edited", ids[2])]


def test_an_edit_with_a_recomputed_hash_is_named(ledger: Ledger, ledger_url: str, make_event: EventFactory) -> None:
    ids = _filled(ledger, make_event)
    raw(ledger_url, "UPDATE cost_events SET team = 'search' WHERE id = ?", (ids[3],))
    chain, seq, prev = raw(ledger_url, "SELECT chain, seq, prev_hash FROM cost_events WHERE id = ?", (ids[3],))[0]
    forged = ledger.get(ids[3])
    assert forged is not None
    digest = link_hash(prev, chain, int(seq), event_payload(forged))
    raw(ledger_url, "UPDATE cost_events SET hash = ? WHERE id = ?", (digest, ids[3]))
    assert kinds(ledger) == [("edited", ids[3])]


def test_a_deleted_row_is_named_by_its_place(ledger: Ledger, ledger_url: str, make_event: EventFactory) -> None:
    ids = _filled(ledger, make_event)
    raw(ledger_url, "DELETE FROM cost_events WHERE id = ?", (ids[2],))
    (finding,) = verify(ledger).findings
    assert finding.kind is FindingKind.DELETED and finding.seq == 3
    assert ids[1] in finding.message and ids[3] in finding.message


def test_deleting_the_newest_rows_shows(ledger: Ledger, ledger_url: str, make_event: EventFactory) -> None:
    ids = _filled(ledger, make_event)
    raw(ledger_url, "DELETE FROM cost_events WHERE id IN (?, ?)", (ids[4], ids[5]))
    (finding,) = verify(ledger).findings
    assert finding.kind is FindingKind.DELETED and finding.seq == 5 and ids[3] in finding.message


def test_an_inserted_row_is_named(ledger: Ledger, ledger_url: str, make_event: EventFactory) -> None:
    ids = _filled(ledger, make_event)
    columns = "id, ts, provider, requested_model, served_model, status, input_tokens, cache_read_tokens, " + (
        "cache_write_5m_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, usage_estimated, input_usd, "
        "cache_read_usd, cache_write_5m_usd, cache_write_1h_usd, output_usd, fallback_price, batch, streamed"
    )
    raw(
        ledger_url,
        f"INSERT INTO cost_events ({columns}) SELECT 'evt-forged', ts, provider, requested_model, served_model, "
        "status, input_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, output_tokens, "
        "reasoning_tokens, usage_estimated, input_usd, cache_read_usd, cache_write_5m_usd, cache_write_1h_usd, "
        "output_usd, fallback_price, batch, streamed FROM cost_events WHERE id = ?",
        (ids[0],),
    )
    assert kinds(ledger) == [("inserted", "evt-forged")]


def test_a_row_forged_into_the_chain_is_named(ledger: Ledger, ledger_url: str, make_event: EventFactory) -> None:
    ids = _filled(ledger, make_event)
    # Shift the newest row one place on and put a forged row in its seat, linked as if it were genuine.
    ((seq,),) = raw(ledger_url, "SELECT seq FROM cost_events WHERE id = ?", (ids[5],))
    raw(ledger_url, "UPDATE cost_events SET seq = ? WHERE id = ?", (int(seq) + 1, ids[5]))
    raw(ledger_url, "UPDATE cost_events SET id = 'evt-forged', seq = ? WHERE id = ?", (int(seq), ids[4]))
    found = {(str(f.kind), f.row_id) for f in verify(ledger).findings}
    assert ("edited", "evt-forged") in found and ("edited", ids[5]) in found


def test_policy_events_are_chained_and_listed(ledger: Ledger, ledger_url: str, make_event: EventFactory) -> None:
    ledger.append([make_event()])
    start = PolicyEvent("v1", source="policy.yaml", timestamp=T0)
    assert ledger.record_policy(start) and not ledger.record_policy(start)
    ledger.record_policy(PolicyEvent("v2", kind=PolicyEventKind.RELOAD, timestamp=T0 + timedelta(hours=1)))
    assert [(p.version, p.kind) for p in ledger.policy_events()] == [("v1", "start"), ("v2", "reload")]
    assert [p.version for p in ledger.policy_events(since=T0 + timedelta(minutes=1))] == ["v2"]
    assert verify(ledger).ok
    raw(ledger_url, "UPDATE policy_events SET version = 'v0' WHERE id = ?", (start.id,))
    assert kinds(ledger) == [("edited", start.id)]


def test_rows_from_before_the_chain_are_chained_on_upgrade(ledger_url: str, make_event: EventFactory) -> None:
    """A ledger at schema 1 with rows in it: opening it migrates, links the old rows into the "pre-audit" chain
    and rolls them up."""
    backend = "sqlite" if ledger_url.startswith("sqlite") else "postgres"
    if backend == "sqlite":
        import pathlib

        pathlib.Path(ledger_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    raw(ledger_url, "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT)")
    for statement in migrations(backend)[0].statements:
        raw(ledger_url, statement)
    raw(ledger_url, "INSERT INTO schema_version (version, name) VALUES (1, 'cost_events')")
    old = [make_event(team="growth"), make_event(team="search")]
    ts = [e.timestamp if backend == "postgres" else int(e.timestamp.timestamp() * 1_000_000) for e in old]
    for e, at in zip(old, ts, strict=True):
        raw(
            ledger_url,
            "INSERT INTO cost_events (id, ts, provider, requested_model, served_model, status, team, input_tokens, "
            "cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, "
            "usage_estimated, input_usd, cache_read_usd, cache_write_5m_usd, cache_write_1h_usd, output_usd, "
            "fallback_price, batch, streamed) VALUES (?, ?, 'openai', 'm', 'm', 'ok', ?, 10, 0, 0, 0, 5, 0, ?, "
            "'0.25', '0', '0', '0', '0.5', ?, ?, ?)",
            (e.id, at, e.attribution.team, *([False] * 4 if backend == "postgres" else [0] * 4)),
        )
    with open_ledger(ledger_url) as led:
        assert led.schema_version() == len(migrations(backend))
        led.append([make_event(team="growth")])
        result = verify(led)
        assert result.ok, result.findings
        assert {h.chain: h.seq for h in result.heads}["pre-audit"] == 2
        from fiscus.ledger import SpendQuery

        query = SpendQuery(by=("team",))
        assert [r.total_usd for r in led.spend(query)] == [r.total_usd for r in led.spend(query, scan=True)]
        assert {r.group["team"]: r.requests for r in led.spend(query)} == {"growth": 2, "search": 1}


@pytest.mark.parametrize("where", ["cost_events", "policy_events"])
def test_deleting_a_chain_end_in_either_table_shows(
    ledger: Ledger, ledger_url: str, make_event: EventFactory, where: str
) -> None:
    ledger.append([make_event()])
    ledger.record_policy(PolicyEvent("v1"))
    raw(ledger_url, f"DELETE FROM {where}")
    (finding,) = verify(ledger).findings
    assert finding.kind is FindingKind.DELETED
