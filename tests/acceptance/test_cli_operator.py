"""The operator CLI through its real interface: the Typer app on a real SQLite file, and the
installed ``cloudsms`` console script as a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cloudsms.cli import app
from cloudsms.storage.store import Store

Run = Callable[..., Result]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ops.db'}"


@pytest.fixture
def run(db_url: str) -> Run:
    """``run(*args, code=0)``: invoke the CLI on the test database and check the exit code."""
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Result:
        result = runner.invoke(app, ["--database-url", db_url, *args])
        assert result.exit_code == code, (args, result.exit_code, result.output)
        assert "Traceback" not in result.output
        return result

    invoke("db", "upgrade")
    return invoke


def _store(db_url: str) -> Store:
    return Store.open(db_url, migrate=False)


def test_customer_lifecycle(run: Run, db_url: str) -> None:
    run("prices", "create-list", "retail", "--currency", "HKD")
    created = run(
        "customers", "create", "acme", "--currency", "hkd", "--price-list", "retail",
        "--callback", "https://acme.example/dr", "--balance", "100", "--sender", "ACME",
    )  # fmt: skip
    key = created.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9]{128}", key)
    assert "created customer 'acme'" in created.stderr

    run("customers", "whitelist", "add", "acme", "10.0.0.1")
    run("customers", "whitelist", "add", "acme", "2001:db8::/32")
    run("customers", "whitelist", "remove", "acme", "10.0.0.1/32")
    run("routes", "create", "main")
    run("routes", "grant", "main", "acme")
    run("customers", "set-credit-limit", "acme", "25.5")
    run(
        "customers", "set", "acme", "--default-sender", "none", "--max-backlog", "1000",
        "--report-intermediate", "--client-cert-sha256", "AB:" * 31 + "AB",
    )  # fmt: skip
    run("customers", "set-callback", "acme", "http://10.0.0.9:8080/dr")

    shown = run("customers", "show", "acme").stdout
    for expected in ("100.00 HKD", "25.50 HKD", "2001:db8::/32", "main", "retail", "1000"):
        assert expected in shown
    assert "http://10.0.0.9:8080/dr" in shown and "opening balance" in shown
    assert key not in shown and key[:8] in shown  # masked without --show-key
    assert key in run("customers", "show", "acme", "--show-key").stdout
    assert "acme" in run("customers", "list").stdout

    run("customers", "disable", "acme")
    store = _store(db_url)
    try:
        assert key not in store.load_snapshot().customers_by_key
        run("customers", "enable", "acme")
        new_key = run("customers", "rotate-key", "acme").stdout.strip()
        assert re.fullmatch(r"[A-Za-z0-9]{128}", new_key) and new_key != key
        snapshot = store.load_snapshot()
        assert set(snapshot.customers_by_key) == {new_key}
        customer = snapshot.customers_by_key[new_key]
        assert customer.default_sender is None and customer.max_backlog == 1000
        assert customer.report_intermediate and customer.client_cert_sha256 == "ab" * 32
        assert customer.credit_limit_micros == 25_500_000
    finally:
        store.close()


def test_top_up_is_exact_and_ledgered(run: Run, db_url: str) -> None:
    run("customers", "create", "acme", "--currency", "JPY", "--balance", "0.1")
    assert "0.30 JPY" in run("customers", "top-up", "acme", "0.2", "--note", "inv 7").stdout
    assert "0.300001 JPY" in run("customers", "top-up", "acme", "0.000001").stdout
    assert "0.200001 JPY" in run("customers", "adjust", "acme", "--", "-0.1").stdout
    store = _store(db_url)
    try:
        assert store.get_customer("acme").balance_micros == 200_001
        ledger = store.ledger("acme")
        assert [e.delta_micros for e in ledger] == [-100_000, 1, 200_000, 100_000]
        assert ledger[2].note == "inv 7" and ledger[0].actor.startswith("cli:")
    finally:
        store.close()


def test_prices_group(run: Run, db_url: str) -> None:
    run("prices", "create-list", "retail", "--currency", "usd")
    run("prices", "set", "retail", "852", "0.0525")
    run("prices", "set", "retail", "+8526", "0.04")
    run("prices", "remove", "retail", "8526")
    shown = run("prices", "show", "retail").stdout
    assert "0.0525 USD" in shown and "HK" in shown and "8526" not in shown
    assert "retail" in run("prices", "list").stdout
    run("customers", "create", "acme", "--currency", "HKD")
    failed = run("customers", "set", "acme", "--price-list", "retail", code=1)
    assert "is in USD but the customer is billed in HKD" in failed.stderr


def test_routes_group(run: Run) -> None:
    run("customers", "create", "acme", "--currency", "HKD")
    run("routes", "create", "premium-hk", "--latin1", "--description", "direct")
    run("routes", "grant", "premium-hk", "acme")
    listed = run("routes", "list").stdout
    assert "premium-hk" in listed and "acme" in listed and "direct" in listed
    run("routes", "revoke", "premium-hk", "acme")
    assert "acme" not in run("routes", "list").stdout
    assert "not granted" in run("routes", "revoke", "premium-hk", "acme", code=1).stderr


def test_blacklist_group(run: Run, db_url: str) -> None:
    run("customers", "create", "acme", "--currency", "HKD")
    run("blacklist", "add", "+85261234567", "--note", "complaint")
    run("blacklist", "add", "8613800138000", "--customer", "acme")
    listed = run("blacklist", "list").stdout
    assert "85261234567" in listed and "platform-wide" in listed and "complaint" in listed
    assert "85261234567" not in run("blacklist", "list", "--customer", "acme").stdout
    run("blacklist", "remove", "85261234567")
    store = _store(db_url)
    try:
        snapshot = store.load_snapshot()
        assert snapshot.blacklist_global == frozenset()
        assert frozenset({"8613800138000"}) in snapshot.blacklist_by_customer.values()
    finally:
        store.close()


def test_optout_group(run: Run, db_url: str) -> None:
    run("customers", "create", "acme", "--currency", "HKD")
    run("customers", "create", "beta", "--currency", "HKD")
    added = run("optout", "add", "acme", "+85261234567")
    assert "85261234567 is on the opt-out list of 'acme'" in added.stderr
    run("optout", "add", "acme", "8613800138000")
    listed = run("optout", "list", "acme").stdout
    assert "85261234567" in listed and "8613800138000" in listed and "operator" in listed
    assert "85261234567" not in run("optout", "list", "beta").stdout
    already = run("optout", "add", "acme", "85261234567", code=1).stderr
    assert "already on the opt-out list of 'acme'" in already
    removed = run("optout", "remove", "acme", "85261234567")
    assert "85261234567 removed from the opt-out list of 'acme'" in removed.stderr
    gone = run("optout", "remove", "acme", "85261234567", code=1).stderr
    assert "not on the opt-out list" in gone
    # Per-destination keywords live on the country policy.
    run("policies", "set", "852", "--opt-out-keywords", "STOP,TD,退订,取消")
    listed = run("policies", "list").stdout
    assert "STOP,TD,退订,取消" in listed and "default" in listed
    store = _store(db_url)
    try:
        snapshot = store.load_snapshot()
        assert set(snapshot.opt_outs_by_customer.values()) == {frozenset({"8613800138000"})}
        assert snapshot.policies[852].opt_out_keywords == ("STOP", "TD", "退订", "取消")
    finally:
        store.close()


def test_registration_groups(run: Run, db_url: str) -> None:
    run("customers", "create", "acme", "--currency", "HKD")
    sig = run("signatures", "add", "acme", "ACME").stdout.strip()
    tpl = run("templates", "add", "acme", "Your code is {code}", "--country", "86").stdout.strip()
    snd = run("senders", "add", "acme", "ACME Ltd", "--country", "852").stdout.strip()
    run("signatures", "approve", sig)
    run("templates", "approve", tpl, "--note", "checked")
    run("senders", "reject", snd, "--note", "not registered")
    assert "approved" in run("signatures", "list", "--customer", "acme").stdout
    templates = run("templates", "list", "--status", "approved").stdout
    assert "Your code is {code}" in templates and "+86" in templates
    assert "not registered" in run("senders", "list", "--status", "rejected").stdout
    assert "already approved" in run("signatures", "approve", sig, code=1).stderr
    store = _store(db_url)
    try:
        snapshot = store.load_snapshot()
        assert list(snapshot.signatures.values()) == [frozenset({"ACME"})]
        assert [t.body for ts in snapshot.templates.values() for t in ts] == ["Your code is {code}"]
        assert snapshot.senders == {}
    finally:
        store.close()


def test_policies_group(run: Run, db_url: str) -> None:
    assert "+86" in run("policies", "list").stdout
    run("policies", "set", "65", "--signature", "--sender-format", "alpha", "--note", "test")
    run("policies", "set", "86", "--no-template")
    run("policies", "delete", "82")
    store = _store(db_url)
    try:
        sg, cn = store.get_policy(65), store.get_policy(86)
        assert sg is not None and sg.region == "SG" and sg.requires_signature
        assert sg.sender_format == "alpha" and not sg.requires_template
        assert cn is not None and not cn.requires_template and cn.requires_signature  # kept
        assert store.get_policy(82) is None
    finally:
        store.close()


def test_settings_and_database_commands(run: Run, tmp_path: Path) -> None:
    shown = run("settings").stdout
    assert "CLOUDSMS_DATABASE_URL" in shown and "replay_window_s" in shown
    run("db", "upgrade")  # idempotent
    missing = CliRunner().invoke(
        app, ["--database-url", f"sqlite:///{tmp_path / 'nope.db'}", "customers", "list"]
    )
    assert missing.exit_code == 2 and "cloudsms db upgrade" in missing.stderr
    assert not (tmp_path / "nope.db").exists()
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("not_a_setting = 1\n")
    refused = CliRunner().invoke(app, ["--config", str(bad_config), "settings"])
    assert refused.exit_code == 2 and "unknown setting 'not_a_setting'" in refused.stderr


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["customers", "create", "x", "--currency", "XYZ"], "unknown currency 'XYZ'", 2),
        (["customers", "create", "acme", "--currency", "HKD"], "already exists", 1),
        (["customers", "create", " pad", "--currency", "HKD"], "leading/trailing", 2),
        (["customers", "create", "x", "--currency", "HKD", "--callback", "ftp://h/"], "http", 2),
        (["customers", "set-callback", "acme", "https:///nohost"], "with a host", 2),
        (["customers", "whitelist", "add", "acme", "10.0.0.0/33"], "not an IP address", 2),
        (["customers", "whitelist", "add", "acme", "example.com"], "not an IP address", 2),
        (["customers", "top-up", "acme", "1.2.3"], "not a decimal number", 2),
        (["customers", "top-up", "acme", "0.0000001"], "at most 6 decimals", 2),
        (["customers", "top-up", "acme", "1e3"], "not a decimal number", 2),
        (["customers", "top-up", "acme", "0"], "more than 0", 2),
        (["customers", "top-up", "ghost", "10"], "no customer 'ghost'", 1),
        (["customers", "show", "ghost"], "no customer 'ghost'", 1),
        (["customers", "set", "acme", "--max-backlog", "-1"], "max backlog", 2),
        (["customers", "set", "acme", "--client-cert-sha256", "abc"], "SHA-256", 2),
        (["customers", "set", "acme"], "nothing to change", 2),
        (["prices", "set", "retail", "999", "0.1"], "assigned country calling code", 2),
        (["prices", "set", "retail", "85a", "0.1"], "digits", 2),
        (["prices", "set", "retail", "852", "-1"], "No such option: -1", 2),
        (["prices", "set", "--", "retail", "852", "-1"], "must not be negative", 2),
        (["prices", "set", "ghost", "852", "1"], "no price list 'ghost'", 1),
        (["prices", "create-list", "eu", "--currency", "XBT"], "unknown currency", 2),
        (["routes", "create", "ROUTE\u00e9"], "printable ASCII", 2),
        (["routes", "grant", "ghost", "acme"], "no route 'ghost'", 1),
        (["blacklist", "add", "12-34"], "digits", 2),
        (["blacklist", "add", "99912345"], "assigned country calling code", 2),
        (["policies", "set", "999"], "not an assigned country calling code", 2),
        (["policies", "set", "852", "--opt-out-keywords", "STOP NOW"], "single words", 2),
        (["optout", "add", "acme", "12-34"], "digits", 2),
        (["optout", "add", "acme", "99912345"], "assigned country calling code", 2),
        (["optout", "add", "ghost", "85261234567"], "no customer 'ghost'", 1),
        (["optout", "list", "ghost"], "no customer 'ghost'", 1),
        (["optout", "add", "acme"], "Missing argument", 2),
        (["policies", "set", "86", "--sender-format", "emoji"], "sender format", 2),
        (["policies", "delete", "999"], "not an assigned", 2),
        (["templates", "add", "acme", "Hello {name"], "template", 2),
        (["templates", "add", "acme", "Code {c}", "--country", "0"], "calling code", 2),
        (["signatures", "add", "acme", "x" * 65], "1 to 64", 2),
        (["senders", "add", "acme", "Ünïcode"], "printable ASCII", 2),
        (["signatures", "approve", "abc"], "valid integer", 2),
        (["signatures", "list", "--status", "maybe"], "pending, approved, rejected", 2),
        (["customers", "create"], "Missing argument", 2),
        (["customers", "top-up", "acme", "5", "--bogus"], "No such option", 2),
    ],
)
def test_bad_input_is_one_readable_line(run: Run, args: list[str], message: str, code: int) -> None:
    run("customers", "create", "acme", "--currency", "HKD")
    run("prices", "create-list", "retail", "--currency", "HKD")
    result = run(*args, code=code)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0]
    assert result.stdout == ""


def test_installed_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "cloudsms"
    url = f"sqlite:///{tmp_path / 'sub.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSMS_")}
    env["CLOUDSMS_DATABASE_URL"] = url  # through the environment, as an operator would

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args], capture_output=True, text=True, env=env, timeout=120
        )

    assert cli("db", "upgrade").returncode == 0
    created = cli("customers", "create", "acme", "--currency", "EUR", "--balance", "1.5")
    assert created.returncode == 0 and re.fullmatch(r"[A-Za-z0-9]{128}\n", created.stdout)
    topped = cli("customers", "top-up", "acme", "0.000001")
    assert topped.returncode == 0 and "1.500001 EUR" in topped.stdout
    bad = cli("customers", "top-up", "acme", "1.2.3")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr + bad.stdout
    assert bad.stderr.strip().startswith("error: ") and len(bad.stderr.splitlines()) == 1
    missing = cli("customers", "show", "ghost")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: no customer 'ghost'"
    module = subprocess.run(
        [sys.executable, "-m", "cloudsms", "routes", "list"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert module.returncode == 0 and "Routes: none" in module.stdout


def test_cli_changes_are_in_the_audit_log(tmp_path: Path) -> None:
    """Every changing CLI command is recorded (actor cli:<login>); reads are not."""
    from cloudsms.storage.store import Store

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    Store.open(url).close()
    runner = CliRunner()
    for args in (
        ["customers", "create", "acme", "--currency", "HKD"],
        ["customers", "top-up", "acme", "25", "--note", "invoice 7"],
        ["customers", "list"],
        ["connectors", "add", "c1", "--host", "127.0.0.1", "--port", "2775",
         "--system-id", "u", "--password", "secret"],
    ):  # fmt: skip
        assert runner.invoke(app, ["--database-url", url, *args]).exit_code == 0
    store = Store.open(url)
    try:
        entries = store.list_audit(limit=10)
    finally:
        store.close()
    actions = sorted(e.action for e in entries)
    assert actions == ["cli.add_connector", "cli.create_customer", "cli.top_up"]
    assert all(e.actor.startswith("cli:") for e in entries)
    connector = next(e for e in entries if e.action == "cli.add_connector")
    assert "secret" not in str(connector.detail)
