"""SMPP accounts, live SMPP sessions and inbound messages in the console, in real headless
Chromium (issue 15): an operator creates an account, a customer's ESME binds to the platform's
SMPP server over TCP with it, the operator sees the session, disables the account (a new bind
is refused), disconnects the session (the ESME's connection closes) and removes the account;
then assigns inbound numbers and reads the MOs a carrier sent, the unrouted one marked; turns an
account's ``mo`` setting off and on and sees each MO's channel (smpp / http) on the MO list.

Every change goes through the console's forms (the admin operations); what they did is read
back from the store, from the SMPP socket, or from the carrier simulator's MOs stored.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_console_browser import Live, _wait

from cloudsms.domain.smpp_accounts import verify_password
from cloudsms.smpp.constants import CommandStatus
from cloudsms.smpp.pdu import BindTransceiver
from cloudsms.transport.errors import BindFailed
from cloudsms.transport.esme import EsmeLink


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmppLive(Live):
    """The browser tests' platform with the customers' SMPP server listening too."""

    def __init__(self, tmp: Path) -> None:
        self.smpp_port = _free_port()
        super().__init__(tmp, smpp_port=self.smpp_port)


@pytest.fixture
def live(tmp_path: Path, browser: Any) -> Iterator[SmppLive]:
    env = SmppLive(tmp_path)
    try:
        yield env
    finally:
        env.close()


async def _ignore(_pdu: Any) -> None:
    return None


def _on_loop(live: SmppLive, coro: Any) -> Any:
    """Run a coroutine on the harness's event loop (the simulator's), from the test's thread."""
    return asyncio.run_coroutine_threadsafe(coro, live.loop).result(15)


def _bind(live: SmppLive, system_id: str, password: str) -> EsmeLink:
    """A customer's ESME: TCP to the platform's SMPP server, bind_transceiver."""
    port = live.smpp_port

    async def connect() -> EsmeLink:
        loop = asyncio.get_running_loop()
        _, link = await loop.create_connection(
            lambda: EsmeLink(
                name="customer", on_deliver=_ignore, response_timeout_s=10, enquire_link_s=0
            ),
            "127.0.0.1",
            port,
        )
        try:
            await link.bind(
                BindTransceiver(sequence_number=1, system_id=system_id, password=password)
            )
        except BaseException:
            link.abort()
            raise
        return link

    return _on_loop(live, connect())  # type: ignore[no-any-return]


async def _closed(link: EsmeLink) -> None:
    await asyncio.wait_for(asyncio.shield(link.closed), 10)


def _login(live: SmppLive, page: Any) -> str:
    base = live.admin.base
    page.goto(base + "/console/login")
    page.fill("#token", live.token)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/console/")
    page.on("dialog", lambda dialog: dialog.accept())  # the forms' "are you sure?" confirmations
    return base


def _flash(page: Any) -> str:
    return str(page.locator(".flash").inner_text())


def test_smpp_accounts_and_sessions_in_chromium(live: SmppLive, page: Any) -> None:
    acme, _ = live.seed()
    base = _login(live, page)

    # Create an account on the SMPP page.
    page.click("nav >> text=SMPP")
    page.wait_for_url(base + "/console/smpp")
    form = page.locator("form.smpp-create")
    form.locator("select[name='path.name']").select_option("acme")
    form.locator("input[name=system_id]").fill("acme1")
    form.locator("input[name=password]").fill("s3cret")
    form.locator("input[name=route]").fill(acme.route)
    form.locator("input[name=binds]").fill("trx,tx")
    form.locator("input[name=max_sessions]").fill("2")
    form.locator("input[name=throughput]").fill("50")
    form.locator("select[name=intermediate_receipts]").select_option("true")
    form.locator("button[type=submit]").click()
    assert _flash(page).startswith("done:")
    row = page.locator("tr[data-account=acme1]")
    cells = row.locator("td").all_inner_texts()
    assert cells[:7] == ["acme1", "acme", acme.route, "trx,tx", "2", "50/s", "yes"]
    [stored] = live.store.list_smpp_accounts("acme")
    assert stored.binds == frozenset({"trx", "tx"}) and stored.intermediate_receipts
    assert verify_password("s3cret", stored.password_hash)

    # Bad input: the operation's own message, nothing created.
    page.click("summary:has-text('New SMPP account')")
    form = page.locator("form.smpp-create")
    form.locator("input[name=system_id]").fill("x" * 16)
    form.locator("input[name=password]").fill("pw")
    form.locator("input[name=route]").fill(acme.route)
    form.locator("button[type=submit]").click()
    assert page.locator(".flash.error").count() == 1 and "system_id" in _flash(page)
    assert len(live.store.list_smpp_accounts()) == 1

    # The customer's page lists it, creates a second one and changes acme1's password.
    page.goto(base + "/console/customers/acme")
    assert page.locator("#smpp-accounts tr[data-account=acme1]").count() == 1
    page.click("summary:has-text('New SMPP account for acme')")
    form = page.locator("form.smpp-create")
    form.locator("input[name=system_id]").fill("acme2")
    form.locator("input[name=password]").fill("pw2")
    form.locator("input[name=route]").fill(acme.route)
    form.locator("button[type=submit]").click()
    assert _flash(page).startswith("done:")
    page.wait_for_url(base + "/console/customers/acme")
    assert page.locator("#smpp-accounts tr[data-account=acme2]").count() == 1
    page.locator("summary", has_text="change password of acme1").click()
    changer = page.locator("tr:has(summary:has-text('change password of acme1')) form.password")
    changer.locator("input[name=password]").fill("n3w")
    changer.locator("button[type=submit]").click()
    assert _flash(page).startswith("done:")
    [acme1] = [a for a in live.store.list_smpp_accounts("acme") if a.system_id == "acme1"]
    assert verify_password("n3w", acme1.password_hash)
    assert not verify_password("s3cret", acme1.password_hash)

    # A customer's ESME binds with the new password (once the SMPP server has reloaded its
    # accounts: a bind before that would count as a guess); the sessions page shows it.
    served = live.platform.server.platform.smpp  # type: ignore[union-attr]
    _wait(lambda: served.accounts["acme1"].password_hash == acme1.password_hash, 10)
    link = _bind(live, "acme1", "n3w")
    page.click("nav >> text=SMPP")
    page.click("text=Live sessions")
    page.wait_for_url(base + "/console/smpp/sessions")
    session = page.locator("#sessions tr[data-session]")
    assert session.count() == 1
    texts = session.locator("td").all_inner_texts()
    assert texts[1:4] == ["acme1", "acme", "trx"] and texts[4].startswith("127.0.0.1:")
    assert texts[5] == "bound" and texts[7].startswith("0 / ")

    # Disconnect the live session: the ESME's connection closes, the page no longer lists it.
    page.locator("#sessions form.disconnect button").click()
    assert _flash(page).startswith("done:")
    _on_loop(live, _closed(link))
    page.goto(base + "/console/smpp/sessions")
    assert page.locator("#sessions tr[data-session]").count() == 0
    assert "No SMPP session is bound." in page.locator("#sessions").inner_text()

    # The ESME binds again. Disabling the account (in another tab) refuses new binds and closes
    # its live session, which the open sessions page marks closed by itself (it refreshes).
    link = _bind(live, "acme1", "n3w")
    page.goto(base + "/console/smpp/sessions")
    assert page.locator("#sessions [data-field=state]").inner_text() == "bound"
    other = page.context.new_page()
    other.on("dialog", lambda dialog: dialog.accept())
    other.goto(base + "/console/smpp")
    assert other.locator("tr[data-account=acme1] td").nth(8).inner_text() == "1"
    other.locator("tr[data-account=acme1] form.disable button").click()
    assert _flash(other).startswith("done:")
    assert other.locator("tr[data-account=acme1] .badge").inner_text() == "disabled"
    assert not next(a for a in live.store.list_smpp_accounts() if a.system_id == "acme1").enabled
    _on_loop(live, _closed(link))
    page.wait_for_function(
        "() => document.querySelector('#sessions [data-field=state]').textContent === 'closed'"
    )
    assert page.locator("#sessions form.disconnect").count() == 0
    with pytest.raises(BindFailed) as refused:
        _bind(live, "acme1", "n3w")
    assert refused.value.command_status == CommandStatus.ESME_RINVSYSID  # as an unknown one

    # Remove both accounts.
    page = other
    page.locator("tr[data-account=acme1] form.remove button").click()
    assert _flash(page).startswith("done:")
    page.locator("tr[data-account=acme2] form.remove button").click()
    assert _flash(page).startswith("done:")
    assert page.locator("tr[data-account]").count() == 0
    assert live.store.list_smpp_accounts() == []
    actions = [e.action for e in live.store.list_audit()]
    assert actions.count("smpp_accounts.remove") == 2 and "smpp_sessions.disconnect" in actions


def test_inbound_numbers_and_messages_in_chromium(live: SmppLive, page: Any) -> None:
    live.seed()
    _wait(lambda: any(s.state == "bound" for s in live.store.connector_statuses()), 20)
    base = _login(live, page)

    # Inbound numbers: add a whole number and a keyword on a shared short code, remove one.
    page.click("nav >> text=Inbound")
    page.wait_for_url(base + "/console/inbound")
    for number, keyword, customer in (("+852 3000 1234", "", "acme"), ("7777", "join", "globex")):
        form = page.locator("form.number-add")
        form.locator("input[name=number]").fill(number)
        form.locator("input[name=keyword]").fill(keyword)
        form.locator("select[name=customer]").select_option(customer)
        form.locator("button[type=submit]").click()
        assert _flash(page).startswith("done:")
    rows = page.locator("#inbound-numbers tbody tr")
    assert [rows.nth(i).locator("td").all_inner_texts()[:3] for i in range(rows.count())] == [
        ["7777", "JOIN", "globex"],
        ["85230001234", "any", "acme"],
    ]
    # Taken already: the operation's message.
    form = page.locator("form.number-add")
    form.locator("input[name=number]").fill("85230001234")
    form.locator("select[name=customer]").select_option("globex")
    form.locator("button[type=submit]").click()
    assert "already assigned" in page.locator(".flash.error").inner_text()
    page.locator("#inbound-numbers tr[data-number='7777'] form button").click()
    assert _flash(page).startswith("done:")
    assert [(n.number, n.keyword) for n in live.store.list_inbound_numbers()] == [
        ("85230001234", "")
    ]

    # A carrier (the simulator the platform is bound to) sends two MOs: one to acme's number,
    # one to a number nobody has.
    async def send() -> None:
        live.sim.send_mo("85261234567", "85230001234", "Hello acme")
        live.sim.send_mo("85269876543", "99999", "Anyone there?")

    _on_loop(live, send())
    _wait(lambda: len(live.store.list_inbound_messages()) == 2, 20)

    page.goto(base + "/console/inbound")
    listed = page.locator("#mo tbody tr[data-mo]")
    assert listed.count() == 2
    by_text = {listed.nth(i).locator("td.content").inner_text(): listed.nth(i) for i in range(2)}
    routed, unrouted = by_text["Hello acme"], by_text["Anyone there?"]
    cells = routed.locator("td").all_inner_texts()
    assert cells[2:4] == ["85261234567", "85230001234"] and cells[6] == "acme"
    assert cells[7].startswith("number")
    assert unrouted.get_attribute("class") == "unrouted"
    assert unrouted.locator("td").nth(6).inner_text() == "unrouted"

    # Only the unrouted ones; then one customer's, from its page's link.
    page.locator("#mo-filter select[name=unrouted]").select_option("true")
    page.locator("#mo-filter button[type=submit]").click()
    assert page.locator("#mo td.content").all_inner_texts() == ["Anyone there?"]
    page.goto(base + "/console/customers/acme")
    assert "85230001234" in page.locator("#inbound-numbers").inner_text()
    page.click("text=Inbound messages of acme")
    assert page.locator("#mo td.content").all_inner_texts() == ["Hello acme"]


def test_mo_setting_of_an_account_and_channel_of_each_mo_in_chromium(
    live: SmppLive, page: Any
) -> None:
    acme, _ = live.seed()
    _wait(lambda: any(s.state == "bound" for s in live.store.connector_statuses()), 20)
    for system_id, binds in (("acme1", {"trx"}), ("acme2", {"tx"})):
        live.store.create_smpp_account("acme", system_id, password_hash="x", binds=frozenset(binds),
                                       max_sessions=1, throughput=0, route=acme.route)  # fmt: skip
    live.store.add_inbound_number("85230001234", "", "acme")
    base = _login(live, page)

    def mo_cell(system_id: str) -> Any:
        return page.locator(f"tr[data-account={system_id}] td[data-field=mo]")

    def channels() -> dict[str, str]:
        page.goto(base + "/console/inbound")
        rows = page.locator("#mo tbody tr[data-mo]")
        return {
            rows.nth(i).locator("td.content").inner_text():
            rows.nth(i).locator("td[data-field=channel]").inner_text()
            for i in range(rows.count())
        }  # fmt: skip

    def send(text: str, count: int) -> None:
        async def go() -> None:
            live.sim.send_mo("85261234567", "85230001234", text)

        _on_loop(live, go())
        _wait(lambda: len(live.store.list_inbound_messages()) == count, 20)

    # acme1 may receive: it takes MOs by default; acme2 (tx only) cannot, and offers no switch.
    page.goto(base + "/console/smpp")
    assert mo_cell("acme1").inner_text().startswith("yes")
    assert mo_cell("acme2").inner_text() == "no" and mo_cell("acme2").locator("form").count() == 0
    send("first, for the SMPP sessions", 1)
    assert channels() == {"first, for the SMPP sessions": "smpp"}

    # Turned off: the customer has no account taking MOs, so its MOs go over HTTP, the one
    # still waiting for a bind too (docs/decisions.md, "MOs over SMPP").
    page.goto(base + "/console/smpp")
    mo_cell("acme1").locator("form.mo-off button").click()
    assert _flash(page).startswith("done:")
    assert mo_cell("acme1").inner_text().startswith("no")
    assert not next(a for a in live.store.list_smpp_accounts() if a.system_id == "acme1").mo
    send("second, over HTTP", 2)
    assert channels() == {"first, for the SMPP sessions": "http", "second, over HTTP": "http"}

    # On again, from the customer's page (the same table): MOs stored from now on use SMPP.
    page.goto(base + "/console/customers/acme")
    mo_cell("acme1").locator("form.mo-on button").click()
    assert _flash(page).startswith("done:")
    page.wait_for_url(base + "/console/customers/acme")
    assert mo_cell("acme1").inner_text().startswith("yes")
    assert next(a for a in live.store.list_smpp_accounts() if a.system_id == "acme1").mo
    send("third, for the SMPP sessions", 3)
    assert channels()["third, for the SMPP sessions"] == "smpp"
    assert [e.action for e in live.store.list_audit()].count("smpp_accounts.update") == 2
