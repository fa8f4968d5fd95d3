"""``cloudsms connectors …`` and ``cloudsms routes rules …`` through the Typer app on a real
SQLite file: happy paths, and one readable line with a non-zero exit for every bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cloudsms.domain.routing import ConnectorStatus
from cloudsms.storage.carrier_ops import CarrierOps
from cloudsms.storage.engine import make_engine

Run = Callable[..., Result]
ADD = ("connectors", "add", "hk-1", "--host", "smsc.example.net", "--port", "2775",
       "--system-id", "acme", "--password", "s3cret")  # fmt: skip


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'carrier.db'}"


@pytest.fixture
def run(db_url: str) -> Run:
    """``run(*args, code=0)``: invoke the CLI on the test database and check the exit code."""
    from cloudsms.cli import app

    runner = CliRunner()

    def invoke(*args: str, code: int = 0, input: str | None = None) -> Result:
        result = runner.invoke(app, ["--database-url", db_url, *args], input=input)
        assert result.exit_code == code, (args, result.exit_code, result.output)
        assert "Traceback" not in result.output
        return result

    invoke("db", "upgrade")
    return invoke


def _error(result: Result) -> str:
    """The single error line on stderr."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_connector_lifecycle(run: Run) -> None:
    added = run(
        *ADD, "--bind", "tx_rx", "--window", "100", "--throughput", "200",
        "--enquire-link", "15", "--response-timeout", "10", "--reconnect-max", "60",
        "--long-mode", "udh16", "--data-codings", "0, 3, 8", "--source-ton", "5",
        "--source-npi", "0", "--id-mode", "hex_to_decimal", "--system-type", "VMA",
    )  # fmt: skip
    assert "connector 'hk-1' added" in added.stderr

    shown = run("connectors", "show", "hk-1").stdout
    for expected in ("smsc.example.net", "2775", "tx_rx", "100", "200/s", "15 s", "10 s",
                     "60 s", "udh16", "0,3,8", "hex_to_decimal", "VMA", "********"):  # fmt: skip
        assert expected in shown, expected
    assert "s3cret" not in shown
    assert "s3cret" in run("connectors", "show", "hk-1", "--show-password").stdout

    listed = run("connectors", "list").stdout
    assert "hk-1" in listed and "smsc.example.net:2775" in listed

    changed = run("connectors", "set", "hk-1", "--window", "20", "--source-ton", "auto",
                  "--rename", "hk-main")  # fmt: skip
    assert "window" in changed.stderr
    shown = run("connectors", "show", "hk-main").stdout
    assert "auto (from the sender)" in shown and "│ 20 " in shown
    run("connectors", "show", "hk-1", code=1)

    run("connectors", "disable", "hk-main")
    assert "│ no " in run("connectors", "show", "hk-main").stdout
    run("connectors", "enable", "hk-main")
    assert "│ yes " in run("connectors", "show", "hk-main").stdout

    run("connectors", "remove", "hk-main")
    assert "Connectors: none" in run("connectors", "list").stdout


def test_password_is_prompted_hidden_when_not_given(run: Run, db_url: str) -> None:
    args = [a for a in ADD if a not in ("--password", "s3cret")]
    result = run(*args, input="pw1\n")
    assert "pw1" not in result.stdout  # hidden input is not echoed
    assert "pw1" in run("connectors", "show", "hk-1", "--show-password").stdout


def test_route_rules_and_remove_guard(run: Run) -> None:
    run(*ADD)
    run("connectors", "add", "cn-1", "--host", "10.1.2.3", "--port", "2775",
        "--system-id", "x", "--password", "")  # fmt: skip
    run("routes", "create", "main")
    added = run("routes", "rules", "add", "main", "hk-1", "--prefix", "+852", "--weight", "3")
    assert "852 → 'hk-1' (priority 0, weight 3)" in added.stderr
    run("routes", "rules", "add", "main", "cn-1", "--priority", "1")
    run("routes", "rules", "add", "main", "cn-1", "--prefix", "86")
    listed = run("routes", "rules", "list").stdout
    lines = [line for line in listed.splitlines() if "main" in line]
    assert len(lines) == 3
    assert "852" in lines[0] and "hk-1" in lines[0] and "any" in lines[2]
    assert "86" in run("routes", "rules", "list", "main").stdout

    # Duplicate rule, unknown route / connector: failed (1), one line.
    assert "already uses" in _error(
        run("routes", "rules", "add", "main", "hk-1", "--prefix", "852", code=1)
    )
    assert "no route 'nope'" in _error(run("routes", "rules", "add", "nope", "hk-1", code=1))
    assert "no connector 'zz'" in _error(run("routes", "rules", "add", "main", "zz", code=1))

    # A connector in use is not removed silently.
    assert "used by 1 route rule" in _error(run("connectors", "remove", "hk-1", code=1))
    run("routes", "rules", "remove", "main", "cn-1", "--prefix", "86")
    assert "no rule" in _error(
        run("routes", "rules", "remove", "main", "cn-1", "--prefix", "86", code=1)
    )
    removed = run("connectors", "remove", "cn-1", "--force")
    assert "with 1 route rule(s)" in removed.stderr
    assert "cn-1" not in run("routes", "rules", "list").stdout


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--host", "bad host!", "not a host name"),
        ("--host", "", "1 to 255"),
        ("--port", "0", "port '0' must be a whole number from 1 to 65535"),
        ("--port", "http", "port 'http'"),
        ("--system-id", "x" * 16, "allows at most 15"),
        ("--system-id", "", "system_id"),
        ("--password", "123456789", "password is 9 characters"),
        ("--system-type", "x" * 13, "allows at most 12"),
        ("--bind", "rx", "trx (one transceiver) or tx_rx"),
        ("--window", "0", "window '0'"),
        ("--window", "1001", "from 1 to 1000"),
        ("--throughput", "-1", "throughput '-1'"),
        ("--enquire-link", "0", "enquire link '0'"),
        ("--response-timeout", "soon", "response timeout 'soon'"),
        ("--reconnect-max", "0", "reconnect max '0'"),
        ("--long-mode", "udh7", "udh8, udh16, sar, payload"),
        ("--data-codings", "0,4", "4 not supported"),
        ("--data-codings", "3", "must include 0 (GSM 03.38) or 8"),
        ("--data-codings", "a,b", "comma-separated"),
        ("--source-ton", "7", "source TON '7' must be 0 to 6"),
        ("--source-npi", "2", "source NPI '2' must be one of"),
        ("--dest-ton", "x", "destination TON"),
        ("--dest-npi", "5", "destination NPI"),
        ("--id-mode", "octal", "id mode 'octal': one of as_is"),
    ],
)
def test_connector_bad_input_is_one_readable_line(
    run: Run, option: str, value: str, message: str
) -> None:
    run(*ADD)
    args = [*ADD[:2], "hk-2", *ADD[3:]]
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    assert message in _error(run(*args, code=2))
    assert "hk-2" not in run("connectors", "list").stdout
    # `set` refuses the same input the same way, and changes nothing.
    if option in ("--host", "--port", "--system-id", "--password"):
        assert message in _error(run("connectors", "set", "hk-1", option, value, code=2))
    else:
        assert message in _error(
            run("connectors", "set", "hk-1", "--window", "9", option, value, code=2)
        )
        assert "│ 9 " not in run("connectors", "show", "hk-1").stdout  # all checked first


def test_other_connector_errors(run: Run) -> None:
    assert "connector name" in _error(run(*[a if a != "hk-1" else " x" for a in ADD], code=2))
    run(*ADD)
    assert "already exists" in _error(run(*ADD, code=1))
    assert "nothing to change" in _error(run("connectors", "set", "hk-1", code=2))
    assert "no connector 'nope'" in _error(run("connectors", "show", "nope", code=1))
    assert "no connector 'nope'" in _error(run("connectors", "enable", "nope", code=1))
    assert "no connector 'nope'" in _error(run("connectors", "remove", "nope", code=1))
    assert "no connector 'nope'" in _error(
        run("connectors", "set", "nope", "--window", "5", code=1)
    )
    missing = run("connectors", "add", "x", "--host", "h", code=2)
    assert "Missing option" in _error(missing)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--prefix", "999"), "does not start with an assigned country calling code"),
        (("--prefix", "85a"), "must be 1 to 16 digits"),
        (("--priority", "-1"), "priority '-1'"),
        (("--priority", "1001"), "from 0 to 1000"),
        (("--weight", "0"), "weight '0' must be a whole number from 1 to 10000"),
        (("--weight", "many"), "weight 'many'"),
    ],
)
def test_rule_bad_input_is_one_readable_line(run: Run, args: tuple[str, ...], message: str) -> None:
    run(*ADD)
    run("routes", "create", "main")
    assert message in _error(run("routes", "rules", "add", "main", "hk-1", *args, code=2))
    assert "Route rules: none" in run("routes", "rules", "list").stdout


def test_status_shows_live_state(run: Run, db_url: str) -> None:
    run(*ADD)
    run("connectors", "add", "spare", "--host", "10.0.0.2", "--port", "2775",
        "--system-id", "x", "--password", "y")  # fmt: skip
    run("connectors", "disable", "spare")
    before = run("connectors", "status").stdout
    assert "down (never started)" in before and "never" in before and "disabled" in before

    ops = CarrierOps(make_engine(db_url))
    try:
        hk = ops.get_connector("hk-1").id
        now = ops.now_ms()
        ops.write_connector_status(
            [
                ConnectorStatus(
                    connector_id=hk,
                    state="bound",
                    window_in_use=12,
                    window_size=50,
                    submit_rate=340,
                    submitted_total=98765,
                    last_error="ESME_RTHROTTLED",
                    lease_until_ms=now + 60_000,
                    updated_ms=now,
                )
            ]
        )
        row = next(line for line in run("connectors", "status").stdout.splitlines()
                   if "hk-1" in line)  # fmt: skip
        for expected in ("bound", "12/50", "340", "98765", "ESME_RTHROTTLED", "s ago"):
            assert expected in row, (expected, row)
        assert "stale" not in row

        # The owner stopped writing: past its lease the state is flagged as stale.
        old = now - 3_600_000
        ops.write_connector_status(
            [ConnectorStatus(connector_id=hk, state="bound", lease_until_ms=old, updated_ms=old)]
        )
        row = next(line for line in run("connectors", "status").stdout.splitlines()
                   if "hk-1" in line)  # fmt: skip
        assert "bound (stale)" in row and "60 min ago" in row
    finally:
        ops.close()
