"""Schema migrations, one ordered set of SQL files per backend (`<backend>/NNNN_name.sql`).

A file's number is the schema version it brings the database to. Each backend applies the pending files on
open, inside one transaction that holds the database's write lock, and records each in `schema_version`; so
re-running is a no-op and two processes opening at once apply every file exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def migrations(backend: str) -> list[Migration]:
    """The migrations of `backend` ("sqlite" or "postgres") in version order."""
    found = []
    for entry in resources.files(__package__).joinpath(backend).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number, _, rest = entry.name.partition("_")
        found.append(Migration(int(number), rest.removesuffix(".sql"), split_statements(entry.read_text("utf-8"))))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{backend} ledger migrations must be numbered 1..n without gaps, found {versions}")
    return found


def split_statements(sql: str) -> tuple[str, ...]:
    """Statements of a migration file: `--` comment lines dropped, split on `;` (files hold no `;` in strings)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return tuple(s.strip() for s in "\n".join(lines).split(";") if s.strip())
