"""The per-case aggregates (`fiscus.ledger.cases`) as one SQL query each: a session wholly inside the window
whose calls share one attribution is its case summary row (`fiscus.ledger.case_summary`); the few others, and
the calls outside sessions, are read from the session rollup's whole hours and the events of the minutes at
either end of the window. Sessions are summed, ranked with window functions and counted inside the database.

Money stays exact: NUMERIC in PostgreSQL; integer limbs in SQLite (`fiscus.ledger.limbs`), carried per case so
costs order correctly. A case with an amount that has no limbs (more than 18 decimals) makes the query answer
from `Ledger.session_spend` instead. Text is ordered byte-wise (PostgreSQL `COLLATE "C"`), as Python orders it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from fiscus.ledger.base import MONEY_CONTEXT, SpendQuery
from fiscus.ledger.case_select import Picker, select_ranks, select_runs
from fiscus.ledger.case_summary import ODD_LIMIT, SPAN_SQL, SUMMARY_TABLE, Plan, plan
from fiscus.ledger.cases import (
    CaseRanks,
    CaseTally,
    Group,
    Rank,
    RunStats,
    costs_from,
    positions,
    ranks_from,
    runs_from,
    tallies_from,
)
from fiscus.ledger.outcomes import OUTCOMES_TABLE, chunks
from fiscus.ledger.rollup import micros_to_datetime, split_window
from fiscus.ledger.rows import TABLE
from fiscus.ledger.sessions import SESSION_GRAINS, SESSION_TABLE, TOKENS_SQL, covers_sessions


@dataclass(frozen=True, slots=True)
class CaseDialect:
    """How a backend spells a case's cost: its cells (named), from a session rollup row and from one event, how
    they sum and order, and how they decode."""

    cells: tuple[str, ...]  # e.g. ("hi", "lo") or ("c",)
    rollup: str  # select-list: a session rollup row's cost cells and exact flag x
    event: str  # select-list: one event's cost cells and exact flag x
    sums: str  # select-list: the cells summed (still ordered correctly) and MIN(x) AS x
    micros: str  # an event's ts in µs since the epoch
    collate: str  # appended to a text column to order it byte-wise
    decode: Callable[[Sequence[Any]], Decimal]
    pick: Picker  # how ranks picked in Python compare and add costs (`fiscus.ledger.case_select`)
    grouping_sets: bool  # GROUP BY GROUPING SETS: the runs' three measures binned in one scan

    def order(self, desc: bool = False) -> str:
        return ", ".join(f"{c} DESC" if desc else c for c in self.cells)

    def raw_sums(self, over: str = "") -> str:
        return ", ".join(f"SUM({c}){over}" for c in self.cells)


_RUN_BINS = {"c": ("cost_bin", ""), "t": ("tokens_bin", "t"), "n": ("calls_bin", "n")}  # a run measure's bin, value


def _keys(keys: Sequence[str]) -> list[str]:
    return [f"k{i}" for i in range(len(keys))]


def _join(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


class CaseQueries:
    """Mixed into `SqlLedger`: `case_tallies`, `case_ranks`, `run_stats` and `session_costs` in SQL."""

    case_dialect: CaseDialect
    dialect: Any
    fetch: Callable[[str, Sequence[Any]], list[Sequence[Any]]]

    def _plan(self, query: SpendQuery) -> Plan | None:
        """Which sessions of `query`'s window its summary rows answer for (`fiscus.ledger.case_summary`)."""
        (span,) = self.fetch(SPAN_SQL, ())[0]
        at = plan(query, self.dialect.placeholder, int(span))
        if at is None:
            return None
        # Read ahead, the few odd sessions are named with their hours: an index range each, where a join with
        # their estimate (PostgreSQL guesses thousands) would read every rollup row of the window.
        odd = self.fetch(f"SELECT os, lo, hi FROM ({at.odd}) o LIMIT {ODD_LIMIT + 1}", at.odd_params)
        return replace(at, odd_rows=odd) if len(odd) <= ODD_LIMIT else at

    def _inside(self, query: SpendQuery, at: Plan, cells: Sequence[str]) -> str:
        """SELECT `cells` (k… and the rest) per session the summary answers for; k… are `query.by`'s columns."""
        keys = [f'"{k}" AS k{i}' for i, k in enumerate(query.by)]
        return f"SELECT {_join(*keys, *cells)} FROM {SUMMARY_TABLE} WHERE {at.inside}"

    def _binned(self, query: SpendQuery, at: Plan, cells: Sequence[str], column: str = "cost_bin") -> str:
        """`_inside` with each session's bin (b) of its cost, or of the measure `column` bins."""
        return self._inside(query, at, [f"{column} AS b", *cells])

    def _source(
        self, query: SpendQuery, extra: tuple[str, Sequence[Any]] = ("", ()), at: Plan | None = None
    ) -> tuple[str, list[Any]]:
        """SELECTs (UNION ALL) of (k…, s, o, n, t, f, cost cells, x) per session rollup row or event in the window:
        keys `query.by`, session ('': none), outcome, calls, tokens, first call (µs). With a plan `at`: only the
        calls outside sessions and those of its odd sessions (the summary answers for the rest)."""
        m, p = self.case_dialect, self.dialect.placeholder
        selects: list[str] = []
        params: list[Any] = []
        cond, extra_params = extra
        for span in split_window(query.since, query.until, SESSION_GRAINS):
            conds: list[str] = []
            span_params: list[Any] = []
            if span.grain is None:
                for bound, op in ((span.since, ">="), (span.until, "<")):
                    if bound is not None:
                        conds.append(f"ts {op} {p}")
                        span_params.append(self.dialect.ts_param(micros_to_datetime(bound)))
                keys = [f"COALESCE(\"{k}\", '') AS k{i}" for i, k in enumerate(query.by)]
                cells = [*keys, "COALESCE(session, '') AS s", "COALESCE(outcome, '') AS o", "1 AS n",
                         f"{TOKENS_SQL} AS t", f"{m.micros} AS f", m.event]  # fmt: skip
                table = TABLE
            else:
                for bound, op in ((span.since, ">="), (span.until, "<")):
                    if bound is not None:
                        conds.append(f"bucket {op} {p}")
                        span_params.append(bound)
                keys = [f'"{k}" AS k{i}' for i, k in enumerate(query.by)]
                cells = [*keys, "session AS s", "outcome AS o", "requests AS n", "tokens AS t", "first_ts AS f",
                         m.rollup]  # fmt: skip
                table = SESSION_TABLE
            for name, value in query.where.items():
                conds.append(f'"{name}" = {p}')
                span_params.append(value)
            if cond:
                conds.append(cond)
                span_params.extend(extra_params)
            select = f"SELECT {', '.join(cells)} FROM {table}"
            alone = " AND ".join([*conds, "session = ''"])
            if at is None:
                selects.append(f"{select} WHERE {' AND '.join(conds)}" if conds else select)
                params += span_params
            elif at.odd_rows is not None and span.grain is None:
                named = [str(r[0]) for r in at.odd_rows]
                conds.append(f"(session IS NULL OR session IN ({', '.join([p] * len(named))}))" if named else
                             "session IS NULL")  # fmt: skip
                selects.append(f"{select} WHERE {' AND '.join(conds)}")
                params += [*span_params, *named]
            elif at.odd_rows is not None:  # the calls outside sessions by their partial index, odd ones by hours
                selects.append(f"{select} WHERE {alone}")
                params += span_params
                if at.odd_rows:
                    each = f"(session = {p} AND bucket >= {p} AND bucket <= {p})"
                    conds.append(f"({' OR '.join([each] * len(at.odd_rows))})")
                    selects.append(f"{select} WHERE {' AND '.join(conds)}")
                    params += [*span_params, *(v for r in at.odd_rows for v in (str(r[0]), int(r[1]), int(r[2])))]
            elif span.grain is None:
                conds.append(f"(session IS NULL OR session IN (SELECT os FROM ({at.odd}) o))")
                selects.append(f"{select} WHERE {' AND '.join(conds)}")
                params += [*span_params, *at.odd_params]
            else:  # many odd sessions: joined with the rollup by their hours
                selects.append(f"{select} WHERE {alone}")
                joined = f"{select} JOIN ({at.odd}) o ON session = o.os AND bucket >= o.lo AND bucket <= o.hi"
                selects.append(f"{joined} WHERE {' AND '.join(conds)}" if conds else joined)
                params += [*span_params, *at.odd_params, *span_params]
        return " UNION ALL ".join(selects), params

    def _singles(self, query: SpendQuery) -> tuple[str, list[Any]]:
        """The calls outside any session in the window, each a case: (k…, s = its id, n, t, cost cells, x)."""
        m, p = self.case_dialect, self.dialect.placeholder
        conds, params = ["session IS NULL"], []  # the partial index of calls outside sessions
        for bound, op in ((query.since, ">="), (query.until, "<")):
            if bound is not None:
                conds.append(f"ts {op} {p}")
                params.append(self.dialect.ts_param(bound))
        for name, value in query.where.items():
            conds.append(f'"{name}" = {p}')
            params.append(value)
        keys = [f"COALESCE(\"{k}\", '') AS k{i}" for i, k in enumerate(query.by)]
        cells = _join(*keys, "id AS s", "1 AS n", f"{TOKENS_SQL} AS t", m.event)
        return f"SELECT {cells} FROM {TABLE} WHERE {' AND '.join(conds)}", params

    def _exact(self, rows: Iterable[Sequence[Any]], at: int) -> bool:
        return all(int(r[at]) for r in rows)

    def case_tallies(self, query: SpendQuery, *, scan: bool = False) -> list[CaseTally]:
        if scan or not covers_sessions(query):
            return tallies_from(self, query, scan=scan)  # type: ignore[arg-type]
        m = self.case_dialect
        at = self._plan(query)
        src, params = self._source(query, at=at)
        k = _keys(query.by)
        kc = [f"{c}{m.collate}" for c in k]
        recorded = (
            f"(SELECT so.outcome FROM {OUTCOMES_TABLE} so WHERE so.session = h.s "
            f"ORDER BY so.ts DESC, so.id{m.collate} DESC LIMIT 1)"
        )
        totals = ", ".join(f"SUM({c}) OVER (PARTITION BY s) AS t{c}" for c in m.cells)
        nulls = ", ".join(["NULL"] * len(k))
        # No joins: the home part, the whole cost and the label of a session meet in one GROUP BY s.
        sql = (
            f"WITH src AS MATERIALIZED ({src}), "
            f"parts AS (SELECT {_join('s', *k, m.sums)} FROM src WHERE s <> '' GROUP BY {_join('s', *k)}), "
            f"homes AS (SELECT {_join('s', *k)}, {totals}, MIN(x) OVER (PARTITION BY s) AS tx, "
            f"ROW_NUMBER() OVER (PARTITION BY s ORDER BY {_join(m.order(desc=True), *kc)}) AS rn FROM parts), "
            f"labels AS (SELECT s, o, ROW_NUMBER() OVER (PARTITION BY s ORDER BY SUM(n) DESC, o{m.collate}) AS rn "
            "FROM src WHERE s <> '' AND o <> '' GROUP BY s, o), "
            f"joined AS (SELECT {_join('s', *k, 'NULL AS o', ', '.join(f't{c} AS {c}' for c in m.cells), 'tx AS x')} "
            f"FROM homes WHERE rn = 1 UNION ALL SELECT {_join('s', nulls, 'o', ', '.join(['NULL'] * len(m.cells)))}, "
            "NULL FROM labels WHERE rn = 1), "
            f"cases AS (SELECT {_join('s', *(f'MAX({c}) AS {c}' for c in k), 'MAX(o) AS o')}, "
            f"{', '.join(f'MAX({c}) AS {c}' for c in m.cells)}, MIN(x) AS x FROM joined GROUP BY s) "
            f"SELECT {_join(*k, f'COALESCE({recorded}, o, {chr(39) * 2}) AS o', 'COUNT(*)', m.raw_sums(), 'MIN(x)')} "
            f"FROM cases h GROUP BY {_join(*k, f'COALESCE({recorded}, o, {chr(39) * 2})')} "
            f"UNION ALL SELECT {_join(*k, 'o', 'SUM(n)', m.raw_sums(), 'MIN(x)')} FROM src WHERE s = '' "
            f"GROUP BY {_join(*k, 'o')}"
        )
        if at is not None:  # a session of the summary is one row: its outcome, the recorded one first
            label = "CASE WHEN recorded <> '' THEN recorded ELSE label END AS o"
            summary = self._inside(query, at, [label, m.rollup])
            sql += (
                f" UNION ALL SELECT {_join(*k, 'o', 'COUNT(*)', m.raw_sums(), 'MIN(x)')} FROM ({summary}) w "
                f"GROUP BY {_join(*k, 'o')}"
            )
            params = [*params, *at.inside_params]
        rows = self.fetch(sql, params)
        width = len(k)
        if not self._exact(rows, -1):
            return tallies_from(self, query, scan=False)  # type: ignore[arg-type]
        found: dict[tuple[Group, str | None], CaseTally] = {}
        for r in rows:  # a group's sessions and its calls outside sessions come as two rows
            key, outcome = _group(r[:width]), r[width] or None
            cases, cost = int(r[width + 1]), m.decode(r[width + 2 : -1])
            have = found.get((key, outcome))
            if have is not None:
                cases, cost = have.cases + cases, MONEY_CONTEXT.add(have.cost, cost)
            found[(key, outcome)] = CaseTally(dict(zip(query.by, key, strict=True)), outcome, cases, cost)
        return list(found.values())

    def case_ranks(
        self,
        query: SpendQuery,
        sets: Sequence[tuple[str, ...]],
        ranks: Sequence[Rank],
        *,
        scan: bool = False,
        singles: bool = True,
    ) -> list[CaseRanks]:
        if scan or not covers_sessions(query) or not sets:
            return ranks_from(self, query, sets, ranks, scan=scan, singles=singles)  # type: ignore[arg-type]
        m = self.case_dialect
        split = self._plan(query)
        src, params = self._source(query, at=split)
        alone, more = self._singles(query)
        if not singles:
            alone = f"{alone} AND 1 = 0"  # the same shape and parameters, no rows
        k = _keys(query.by)
        width = max(len(s) for s in sets)
        at = _join(*(r.sql("cnt") for r in ranks))
        parts = [
            f"WITH src AS MATERIALIZED ({src}), singles AS ({alone}), "
            f"cases AS MATERIALIZED (SELECT {_join(*k, 's', '0 AS one', m.sums)} FROM src WHERE s <> '' "
            f"GROUP BY {_join(*k, 's')} UNION ALL SELECT {_join(*k, 's', '1', *m.cells, 'x')} FROM singles)"
        ]
        if split is not None:  # the summary's sessions sorted once, ranked in Python; the few others summed here
            cases = (
                f"WITH src AS MATERIALIZED ({src}), singles AS ({alone}) SELECT {_join(*k, 's', '0', m.sums)} FROM src "
                f"WHERE s <> '' GROUP BY {_join(*k, 's')} UNION ALL SELECT {_join(*k, 's', '1', *m.cells, 'x')} "
                "FROM singles"
            )
            others = self.fetch(cases, [*params, *more])
            if self._exact(others, -1):
                binned, inside_params = self._binned(query, split, [m.rollup]), split.inside_params
                found = select_ranks(
                    m.pick, query.by, sets, ranks, others,
                    lambda: self.fetch(f"SELECT {_join(*k, 'b', 'COUNT(*)', 'MIN(x)')} FROM ({binned}) w "
                                       f"GROUP BY {_join(*k, 'b')}", inside_params),
                    lambda cond, more: self.fetch(f"SELECT {_join(*k, 'b', *m.cells)} FROM ({binned}) w WHERE {cond}",
                                                  [*inside_params, *more]),
                    self.dialect.placeholder,
                )  # fmt: skip
                if found is not None:
                    return found
            return ranks_from(self, query, sets, ranks, scan=False, singles=singles)  # type: ignore[arg-type]
        selects = []
        for i, keys in enumerate(sets):
            ki = [f"k{query.by.index(key)}" for key in keys]
            window = f"PARTITION BY {', '.join(ki)}" if ki else ""
            parts.append(
                f"c{i} AS (SELECT {_join(*ki, m.sums)} FROM cases GROUP BY {_join(*ki, 's', 'one')}), "
                f"r{i} AS (SELECT {_join(*ki, *m.cells)}, ROW_NUMBER() OVER ({window} ORDER BY {m.order()}) AS rn, "
                f"COUNT(*) OVER ({window}) AS cnt, MIN(x) OVER ({window}) AS xx FROM c{i})"
            )
            padded = [*ki, *(["NULL"] * (width - len(ki)))]
            selects.append(
                f"SELECT {_join(str(i), *padded, 'cnt', 'rn', *m.cells, 'xx')} FROM r{i} WHERE rn IN ({_join('1', at)})"
            )
        sql = ", ".join(parts) + " " + " UNION ALL ".join(selects)
        rows = self.fetch(sql, [*params, *more])
        if not self._exact(rows, -1):
            return ranks_from(self, query, sets, ranks, scan=False, singles=singles)  # type: ignore[arg-type]
        found: dict[tuple[int, Group], CaseRanks] = {}
        for r in rows:
            i = int(r[0])
            keys = sets[i]
            group = _group(r[1 : 1 + len(keys)])
            have = found.get((i, group))
            if have is None:
                have = found[(i, group)] = CaseRanks(keys, dict(zip(keys, group, strict=True)), int(r[1 + width]), {})
            have.at[int(r[2 + width])] = m.decode(r[3 + width : -1])
        return list(found.values())

    def run_stats(self, query: SpendQuery, ranks: Sequence[Rank], *, scan: bool = False) -> list[RunStats]:
        if scan or not covers_sessions(query) or len(query.by) != 1:
            return runs_from(self, query, ranks, scan=scan)  # type: ignore[arg-type]
        m = self.case_dialect
        split = self._plan(query)
        src, params = self._source(query, at=split)
        singles, more = self._singles(query)
        at = _join(*(r.sql("cnt") for r in ranks))
        pw = "PARTITION BY k0"
        totals = ", ".join(f"SUM({c}) OVER ({pw}) AS tot_{c}" for c in m.cells)
        sql = (
            f"WITH src AS MATERIALIZED ({src}), singles AS ({singles}), "
            f"parts AS MATERIALIZED (SELECT s, k0, MIN(f) AS f, SUM(n) AS n, SUM(t) AS t, {m.sums} FROM src "
            "WHERE s <> '' GROUP BY s, k0), "
            f"firsts AS (SELECT s, k0, ROW_NUMBER() OVER (PARTITION BY s ORDER BY f, k0{m.collate}) AS rn FROM parts), "
            f"runs AS (SELECT fi.k0 AS k0, SUM(p.n) AS n, SUM(p.t) AS t, {m.sums} FROM parts p JOIN firsts fi "
            f"ON fi.s = p.s AND fi.rn = 1 GROUP BY fi.k0, p.s UNION ALL SELECT k0, n, t, {', '.join(m.cells)}, x "
            "FROM singles)"
        )
        if split is not None:  # the summary's runs counted per bin, the few others read whole
            others = self.fetch(f"{sql} SELECT k0, n, t, {', '.join(m.cells)}, x FROM runs", [*params, *more])
            found = select_runs(m.pick, ranks, others, lambda: self._count_runs(query, split),
                                lambda measure, cond, ps: self._read_runs(query, split, measure, cond, ps),
                                self.dialect.placeholder)  # fmt: skip
            return runs_from(self, query, ranks, scan=False) if found is None else found  # type: ignore[arg-type]
        sql += (
            ", "
            f"ranked AS (SELECT k0, n, t, {', '.join(m.cells)}, ROW_NUMBER() OVER ({pw} ORDER BY {m.order()}) AS rc, "
            f"ROW_NUMBER() OVER ({pw} ORDER BY t) AS rt, ROW_NUMBER() OVER ({pw} ORDER BY n) AS rk, "
            f"COUNT(*) OVER ({pw}) AS cnt, SUM(n) OVER ({pw}) AS calls, {totals}, MIN(x) OVER ({pw}) AS xx FROM runs) "
            f"SELECT k0, cnt, calls, {', '.join(f'tot_{c}' for c in m.cells)}, rc, rt, rk, n, t, {', '.join(m.cells)}, "
            "xx "
            f"FROM ranked WHERE rc IN (1, {at}) OR rt IN (1, {at}) OR rk IN (1, {at})"
        )
        rows = self.fetch(sql, [*params, *more])
        if not self._exact(rows, -1):
            return runs_from(self, query, ranks, scan=False)  # type: ignore[arg-type]
        width = len(m.cells)
        found: dict[str | None, RunStats] = {}
        for r in rows:
            group = _group(r[:1])[0]
            have = found.get(group)
            if have is None:
                total = m.decode(r[3 : 3 + width])
                have = found[group] = RunStats(group, int(r[1]), int(r[2]), total, {}, {}, {})
            rc, rt, rk, n, t = (int(v) for v in r[3 + width : 8 + width])
            wanted = positions(have.runs, ranks)  # a row comes for any one of its three ranks
            if rc in wanted:
                have.cost_at[rc] = m.decode(r[8 + width : 8 + 2 * width])
            if rt in wanted:
                have.tokens_at[rt] = t
            if rk in wanted:
                have.calls_at[rk] = n
        return list(found.values())

    def _runs_binned(self, query: SpendQuery, at: Plan, measure: str) -> str:
        cells = ["calls AS n", "tokens AS t", self.case_dialect.rollup]
        return self._binned(query, at, cells, _RUN_BINS[measure][0])

    def _count_runs(self, query: SpendQuery, at: Plan) -> list[Sequence[Any]]:
        """Per measure, run group and bin: the summary's runs, their calls and cost (`select_runs`' count) — in
        one scan where the backend has grouping sets."""
        m = self.case_dialect
        if m.grouping_sets:
            cells = ["cost_bin", "tokens_bin", "calls_bin", "calls AS n", m.rollup]
            measure = "CASE WHEN GROUPING(cost_bin) = 0 THEN 'c' WHEN GROUPING(tokens_bin) = 0 THEN 't' ELSE 'n' END"
            sql = (
                f"SELECT {measure}, k0, COALESCE(cost_bin, tokens_bin, calls_bin), COUNT(*), SUM(n), {m.sums} "
                f"FROM ({self._inside(query, at, cells)}) w "
                "GROUP BY GROUPING SETS ((k0, cost_bin), (k0, tokens_bin), (k0, calls_bin))"
            )
            return self.fetch(sql, at.inside_params)
        zeros = ", ".join(["0"] * len(m.cells))
        selects = [
            f"SELECT '{measure}' AS measure, k0, b, COUNT(*) AS runs, "
            f"{'SUM(n), ' + m.sums if measure == 'c' else '0, ' + zeros + ', MIN(x)'} "
            f"FROM ({self._runs_binned(query, at, measure)}) w GROUP BY k0, b"
            for measure in ("c", "t", "n")
        ]
        return self.fetch(" UNION ALL ".join(selects), [*at.inside_params] * 3)

    def _read_runs(self, query: SpendQuery, at: Plan, measure: str, cond: str, params: list[Any]) -> list[Any]:
        cells = ", ".join(self.case_dialect.cells) if measure == "c" else _RUN_BINS[measure][1]
        sql = f"SELECT k0, b, {cells} FROM ({self._runs_binned(query, at, measure)}) w WHERE {cond}"
        return self.fetch(sql, [*at.inside_params, *params])

    def session_costs(
        self, query: SpendQuery, sessions: Iterable[str], *, scan: bool = False
    ) -> dict[tuple[Group, str], Decimal]:
        if scan or not covers_sessions(query):
            return costs_from(self, query, sessions, scan=scan)  # type: ignore[arg-type]
        m, p = self.case_dialect, self.dialect.placeholder
        k = _keys(query.by)
        out: dict[tuple[Group, str], Decimal] = {}
        rows: list[Sequence[Any]] = []
        for chunk in chunks(sessions):
            src, params = self._source(query, (f"session IN ({', '.join([p] * len(chunk))})", chunk))
            sql = f"SELECT {_join(*k, 's', m.sums)} FROM ({src}) x GROUP BY {_join(*k, 's')}"
            rows.extend(self.fetch(sql, params))
        if not self._exact(rows, -1):
            return costs_from(self, query, sessions, scan=False)  # type: ignore[arg-type]
        for r in rows:
            out[(_group(r[: len(k)]), str(r[len(k)]))] = m.decode(r[len(k) + 1 : -1])
        return out


def _group(cells: Sequence[Any]) -> Group:
    return tuple(None if v is None or v == "" else str(v) for v in cells)
