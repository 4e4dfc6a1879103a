"""`fiscus keys`: create prints the key once, list never shows it, revoke; errors are one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fiscus.cli.main import main
from fiscus.keys import KeyRing, hash_key, open_key_store


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/keys.db"
    code, out, err = run(
        capsys, "keys", "create", "--agent", "triage", "--team", "support", "--env", "prod",
        "--tenant", "acme", "--allow-agent", "triage-*", "--allow-agent", "planner", "--on-disallowed", "ignore",
        "--name", "ci", "--store", url,
    )  # fmt: skip
    assert code == 0
    secret = out.strip()
    assert secret.startswith("fk-") and len(secret) == 35
    assert "cannot be shown again" in err and secret not in err
    stored = open_key_store(url).find(hash_key(secret))
    assert stored is not None and stored.attribution.tenant == "acme"
    assert stored.claims.to_dict() == {"agent": ["triage-*", "planner"]} and stored.claims.on_disallowed == "ignore"

    code, out, _ = run(capsys, "keys", "list", "--store", url)
    assert code == 0 and secret not in out and stored.key_hash not in out
    assert stored.id in out and "agent=triage" in out and secret[:8] in out

    code, out, _ = run(capsys, "keys", "list", "--store", url, "--json")
    [listed] = json.loads(out)
    assert listed["id"] == stored.id and listed["revoked_at"] is None
    assert listed["allow"] == {"agent": ["triage-*", "planner"]} and listed["on_disallowed"] == "ignore"

    code, out, _ = run(capsys, "keys", "allow", stored.id, "--allow-workflow", "refund-*", "--store", url)
    assert code == 0 and "may claim workflow=refund-* (else refuse)" in out
    assert open_key_store(url).get(stored.id).claims.to_dict() == {"workflow": ["refund-*"]}

    code, out, _ = run(capsys, "keys", "revoke", stored.id, "--store", url)
    assert code == 0 and f"revoked {stored.id}" in out
    assert KeyRing(open_key_store(url)).verify(secret) is None
    _, out, _ = run(capsys, "keys", "list", "--store", url, "--json")
    assert json.loads(out)[0]["revoked_at"] is not None


def test_store_from_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "fiscus.yaml"
    config.write_text(f"keys: sqlite:///{tmp_path}/from-config.db\n")
    code, out, _ = run(capsys, "keys", "create", "--agent", "a", "--team", "t", "--env", "dev", "--config", str(config))
    assert code == 0
    assert KeyRing(open_key_store(f"sqlite:///{tmp_path}/from-config.db")).verify(out.strip()) is not None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["keys", "revoke", "vk_nope"], "no virtual key with id 'vk_nope'"),
        (["keys", "create", "--agent", "a", "--team", "t"], "Missing option '--env'"),
        (["keys", "create", "--agent", "a", "--team", "", "--env", "p"], "needs a non-empty team"),
        (["keys", "list", "--store", "mysql://db"], "unknown scheme"),
        (
            ["keys", "create", "--agent", "a", "--team", "t", "--env", "p", "--on-disallowed", "drop"],
            "refuse or ignore",
        ),
        (["keys", "create", "--agent", "a", "--team", "t", "--env", "p", "--allow-agent", " "], "empty pattern"),
        (["keys", "allow", "vk_nope", "--allow-agent", "x"], "no virtual key with id 'vk_nope'"),
    ],
)
def test_errors_are_one_line_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if "--store" not in argv:
        argv = [*argv, "--store", f"sqlite:///{tmp_path}/keys.db"]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("fiscus: error: ") and message in err
