"""Opt-out lists above the store: inbound keywords (STOP / START) and people's changes.

``OptOutService.apply_inbound_opt`` applies an inbound keyword in a transaction of its own: it
reads the first word against the keywords of the handset's country (``domain/opt_out.py``) and
puts the number on, or takes it off, that customer's list. The carriers' MO path does not call
it: it applies the same rule (``domain.opt_out.opt_change``) inside the transaction that stores
the MO (``storage.inbound_ops.store_inbounds``; docs/decisions.md, "Opt-out lists"). Either way
the change is a configuration change: every running server's accept path sees it within a
second (``services/config_cache.py``), where a later send to the number is answered Intercept
for that recipient, with no read per message.

``add`` / ``remove`` / ``list`` are what operators (the CLI, the admin API, the console, through
``services.operator.Operator``) and the customer (the portal) call: validated input, readable
``Conflict`` / ``NotFound`` for a number already listed or not listed.

    >>> service = OptOutService(store)
    >>> service.apply_inbound_opt(7, "+85261234567", "STOP")
    <OptAction.OPT_OUT: 'opt_out'>
"""

from __future__ import annotations

import asyncio
import logging

from cloudsms.domain.opt_out import (
    OptAction,
    OptOut,
    OptVia,
    calling_code_of,
    first_word,
    inbound_number,
    opt_keyword,
)
from cloudsms.exceptions import Conflict, NotFound
from cloudsms.services import validation as v
from cloudsms.storage.config_ops import CustomerRef
from cloudsms.storage.interfaces import OptOutStore

log = logging.getLogger("cloudsms.opt_out")


class OptOutService:
    """Opt-out lists of one store (see the module docstring). Blocking: call from a thread."""

    def __init__(self, store: OptOutStore) -> None:
        self.store = store
        self._pending: set[asyncio.Task[OptAction | None]] = set()

    def on_inbound(self, customer_id: int | None, msisdn: str, text: str) -> None:
        """From the event loop, without waiting: ``apply_inbound_opt`` in a worker thread.

        For hooks that may not block (``InboundIntake.on_stored``); a failure is logged. An
        unrouted message (``customer_id`` None) has no list to change.
        """
        if customer_id is None:
            return
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self.apply_inbound_opt, customer_id, msisdn, text)
        )
        self._pending.add(task)  # a task nobody references may be collected before it runs
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[OptAction | None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("opt-out keyword not applied", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for the keywords ``on_inbound`` scheduled (at shutdown, and in tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def apply_inbound_opt(self, customer_id: int, msisdn: str, text: str) -> OptAction | None:
        """Apply an inbound message's keyword; what it was (None: not a keyword, or no number).

        ``msisdn`` is the MO's source address as the carrier sent it (``+852…``, ``00852…`` or
        digits with the calling code). Idempotent: STOP from a listed number changes nothing.
        """
        number = inbound_number(msisdn)
        if number is None:
            if opt_keyword(text, None) is not None:
                log.warning(
                    "opt-out keyword from %r ignored: not an international number", msisdn,
                    extra={"customer_id": customer_id},
                )  # fmt: skip
            return None
        cc = calling_code_of(number)
        policy = None if cc is None else self.store.get_policy(cc)
        action = opt_keyword(text, policy)
        if action is OptAction.OPT_OUT:
            keyword = first_word(text)[:64]
            if self.store.add_opt_out(customer_id, number, via="keyword", keyword=keyword):
                log.info("%s opted out (%s)", number, keyword, extra={"customer_id": customer_id})
        elif action is OptAction.OPT_IN and self.store.remove_opt_out(customer_id, number):
            log.info("%s opted back in", number, extra={"customer_id": customer_id})
        return action

    def add(self, customer: CustomerRef, number: str, *, via: OptVia) -> str:
        """Put a number (calling code first) on the customer's list; its digits."""
        digits = v.check_number(number)
        if not self.store.add_opt_out(customer, digits, via=via):
            raise Conflict(f"{digits} is already on the opt-out list of {customer!r}")
        return digits

    def remove(self, customer: CustomerRef, number: str) -> str:
        """Take a number off the customer's list (it may be sent to again); its digits."""
        digits = v.check_number(number)
        if not self.store.remove_opt_out(customer, digits):
            raise NotFound(f"{digits} is not on the opt-out list of {customer!r}")
        return digits

    def list(self, customer: CustomerRef) -> list[OptOut]:
        return self.store.list_opt_outs(customer)
