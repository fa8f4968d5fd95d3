"""The SMPP server customers' ESMEs bind to: SMPP 3.4 next to the UIP endpoint (issue 15).

Strategy: :class:`CustomerSmppServer` is a :class:`~cloudsms.transport.server.SmppServer`
(the SMSC end of the transport) with three jobs:

* binds: the system_id names an SMPP account (``cloudsms.domain.smpp_accounts``, reloaded with
  the configuration), its password is checked against the scrypt digest off the event loop, and
  the bind mode, the account's session cap and the customer's source-IP whitelist decide; each
  refusal has its own command_status (docs/integration-guide.en.md);
* submit_sm: read as one recipient of a UIP SMS_SEND_REQUEST (``cloudsms.api.smpp_submit``) and
  decided by the same code as a UIP packet (``cloudsms.api.accept.plan_packet``), then written by
  the UIP service's own group-commit writer; submit_sm_resp leaves after the durable commit,
  with the SMS_UID as message_id; a submit_multi is that packet with one recipient per
  destination: one message_id (the first recipient's SMS_UID, which every recipient's receipts
  carry) and the refused destinations in unsuccess_sme;
* throughput: a per-account bucket counted in segments, answered ESME_RTHROTTLED when empty;
* receipts: a submit_sm with registered_delivery marks its message with the account, and its
  reports then go out as deliver_sm on the account's receiving sessions
  (``cloudsms.api.smpp_receipts``) instead of the HTTP callback;
* inbound messages: MOs routed to a customer with an account taking them (``mo``) go out as
  deliver_sm on the receiving sessions of such an account (``cloudsms.api.smpp_mo``) instead
  of SMS_PUSH_MO;
* keepalive: with ``enquire_link_s``, a session idle that long gets an enquire_link and is
  aborted when it does not answer within ``response_timeout_s`` (the deliver_sm timeout too):
  a customer gone without FIN or RST (a NAT or firewall forgot the connection) frees its slot
  then, not when TCP gives up.

With ``tls_port`` it listens for SMPP over TLS too (the UIP listener's certificate; a customer
bound to a client certificate fingerprint must present that certificate, so only over TLS).

It borrows the UIP service's configuration, writer, backlog gauge and UID generator, so both
endpoints accept from one state: a customer over its backlog is over it on both.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import ipaddress
import itertools
import logging
import ssl
import time
from collections.abc import Awaitable

from cloudsms.api import guard
from cloudsms.api.accept import plan_packet
from cloudsms.api.guard import GuessThrottle
from cloudsms.api.smpp_concat import Concatenations, Part, Submit, is_part
from cloudsms.api.smpp_mo import MoSender
from cloudsms.api.smpp_outbox import RESPONSE_TIMEOUT_S
from cloudsms.api.smpp_receipts import ReceiptSender
from cloudsms.api.smpp_sessions import SegmentBucket, Session
from cloudsms.api.smpp_submit import STATUS_OF, Refused, Submission, read_submit, unsuccess_of
from cloudsms.api.uip import PLATFORM_SENDER, UipService
from cloudsms.domain.codes import ResultCode
from cloudsms.domain.content import MAX_CONTENT_BYTES, MAX_SEGMENTS, plan_content
from cloudsms.domain.models import Customer
from cloudsms.domain.smpp_accounts import (
    RECEIPT_FINAL,
    RECEIPT_ON_FAILURE,
    SmppAccount,
    SmppSessionInfo,
    verify_password,
)
from cloudsms.domain.timefmt import utcnow
from cloudsms.exceptions import StoreError
from cloudsms.services.config_cache import PreparedConfig
from cloudsms.smpp.constants import CommandStatus as S
from cloudsms.smpp.pdu import Pdu, SubmitMulti, SubmitSm, UnsuccessSme
from cloudsms.storage.interfaces import SmppServerStore
from cloudsms.transport.server import BindRequest, SmppServer, SmscConnection

log = logging.getLogger("cloudsms.smpp")

#: submit_sm of one session waiting for their answer, at most; more get ESME_RTHROTTLED.
DEFAULT_WINDOW = 100
#: deliver_sm (receipts; inbound messages apart) unanswered on one session, at most.
DEFAULT_RECEIPT_WINDOW = 100

#: What a submit is answered: command_status, message_id, unsuccess_sme (submit_multi).
Answer = tuple[int, str, tuple[UnsuccessSme, ...]]


class CustomerSmppServer(SmppServer):
    """The customers' SMPP server over the UIP service's acceptance state."""

    def __init__(
        self,
        service: UipService,
        store: SmppServerStore,
        host: str = "127.0.0.1",
        port: int = 2775,
        *,
        window: int = DEFAULT_WINDOW,
        receipt_window: int = DEFAULT_RECEIPT_WINDOW,
        tls_port: int = 0,
        tls_context: ssl.SSLContext | None = None,
        response_timeout_s: float = RESPONSE_TIMEOUT_S,
        **options: object,
    ) -> None:
        super().__init__(
            host,
            port,
            response_timeout_s=response_timeout_s,
            **options,  # type: ignore[arg-type]
        )
        #: SMPP over TLS on a second port (same accounts, same session caps), when both set.
        self.tls_port = tls_port
        self.tls_context = tls_context
        self._tls_server: asyncio.Server | None = None
        self.service = service
        self.source = store
        #: Receipts (deliver_sm) from the report outbox to the accounts' receiving sessions,
        #: ``receipt_window`` unanswered per session (10 capped a session's receipts at what
        #: one round trip of 10 allows: bench/README.md).
        self.receipts = ReceiptSender(
            store, self, window=receipt_window, response_timeout_s=response_timeout_s
        )
        #: Inbound messages (deliver_sm) from the MO outbox to the customers' receiving sessions.
        self.mo = MoSender(
            store, self, window=receipt_window, response_timeout_s=response_timeout_s
        )
        self.window = window
        self.accounts: dict[str, SmppAccount] = {}
        self.sessions: dict[SmscConnection, Session] = {}
        self._session_ids = itertools.count(1)
        self._buckets: dict[str, SegmentBucket] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: Concatenated parts held until their message is whole (``api.smpp_concat``).
        self.concat = Concatenations(self._parts_expired)
        self._loop: asyncio.AbstractEventLoop | None = None
        settings = service.settings
        #: Sources that failed binds (unknown system_id, wrong password) ``key_guess_limit``
        #: times are refused without a password check for a while, as AUTH_KEY guessers are.
        self.guesses = GuessThrottle(
            limit=settings.key_guess_limit,
            window_s=settings.key_guess_window_s,
            cooldown_s=settings.key_guess_cooldown_s,
        )
        #: Password checks (scrypt: ~16 MB and tens of ms each) on threads of their own, at most
        #: two at once: a flood of binds cannot take the threads the store calls run on.
        self._hashing = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="smpp-bind")

    # -- accounts ---------------------------------------------------------------------------

    def reload(self, _config: PreparedConfig | None = None) -> None:
        """Read every account again (blocking: at start and from the configuration thread).

        After start, a failed read keeps the accounts loaded and is tried again a second later
        (the configuration cache calls this once per change, never again for the same one).
        """
        try:
            accounts = {a.system_id: a for a in self.source.list_smpp_accounts()}
        except StoreError:
            if self._loop is None:
                raise
            log.exception("reloading the SMPP accounts failed; trying again in 1 s")
            self._loop.call_soon_threadsafe(self._reload_later)
            return
        self.accounts = accounts
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._apply_accounts)

    def _reload_later(self) -> None:
        assert self._loop is not None
        self._loop.call_later(1.0, lambda: self._spawn(asyncio.to_thread(self.reload)))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _apply_accounts(self) -> None:
        """Close sessions whose account is gone or disabled; take new throughput limits."""
        for conn, session in list(self.sessions.items()):
            account = self.accounts.get(session.account.system_id)
            if account is None or not account.enabled or account.id != session.account.id:
                log.info(
                    "%s: SMPP account %r removed or disabled: closing", conn.peer, conn.system_id
                )
                conn.close()
            else:
                session.account = account
        for system_id in list(self._buckets):
            account = self.accounts.get(system_id)
            if account is None or account.throughput != int(self._buckets[system_id].rate):
                del self._buckets[system_id]

    async def start(self) -> None:
        await asyncio.to_thread(self.reload)
        self._loop = asyncio.get_running_loop()
        self.service.config.subscribe(self.reload)
        if self.port:
            await super().start()
            log.info("listening on smpp://%s:%d (customers' SMPP server)", self.host, self.port)
        if self.tls_port and self.tls_context is not None:
            self._tls_server = await self._loop.create_server(
                lambda: SmscConnection(self),
                self.host,
                self.tls_port,
                reuse_address=True,
                ssl=self.tls_context,
            )
            port = self._tls_server.sockets[0].getsockname()[1]
            log.info("listening on smpps://%s:%d (customers' SMPP over TLS)", self.host, port)
        await self.receipts.start()
        await self.mo.start()

    async def stop(self) -> None:
        """Answer the submits already taken (the writer still runs), then close every session."""
        await self.mo.stop()
        await self.receipts.stop()
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await asyncio.gather(*self._tasks, return_exceptions=True)
        held = self.concat.clear()
        if held:
            self._answer_parts(held, S.ESME_RSUBMITFAIL, "")
        if self._tls_server is not None:
            self._tls_server.close()
        await super().stop()  # closes every connection, the TLS ones too
        self._hashing.shutdown(wait=False, cancel_futures=True)
        if self._tls_server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._tls_server.wait_closed()
            self._tls_server = None

    # -- binds ------------------------------------------------------------------------------

    def authenticate(self, conn: SmscConnection, bind: BindRequest) -> int | asyncio.Task[int]:
        ip = _ip(conn)
        if self.guesses.blocked(ip):
            return S.ESME_RBINDFAIL  # in its cool-down after failed binds (logged at the start)
        account = self.accounts.get(bind.system_id)
        if account is None or not account.enabled:
            log.info("%s: bind as unknown or disabled system_id %r", conn.peer, bind.system_id)
            self._failed_bind(ip)
            return S.ESME_RINVSYSID
        customer = customer_by_id(self.service.config.current, account.customer_id)
        if customer is None:
            log.info("%s: bind as %r: customer disabled", conn.peer, bind.system_id)
            return S.ESME_RBINDFAIL
        refusal = self._refuse_source(customer, conn)
        if refusal is not None:
            event, reason = refusal
            guard.EVENTS.emit(
                event,
                reason,
                client_ip=_ip(conn),
                customer=customer.name,
                system_id=account.system_id,
            )
            return S.ESME_RBINDFAIL
        return asyncio.ensure_future(self._check_password(conn, bind, account))

    async def _check_password(
        self, conn: SmscConnection, bind: BindRequest, account: SmppAccount
    ) -> int:
        loop = asyncio.get_running_loop()
        good = await loop.run_in_executor(
            self._hashing, verify_password, bind.password, account.password_hash
        )
        if not conn.is_open:
            return S.ESME_RBINDFAIL
        if not good:
            log.info("%s: bind as %r: wrong password", conn.peer, bind.system_id)
            self._failed_bind(_ip(conn))
            return S.ESME_RINVPASWD
        mode = {"BindTransmitter": "tx", "BindReceiver": "rx", "BindTransceiver": "trx"}[
            type(bind).__name__
        ]
        if mode not in account.binds:
            log.info("%s: bind as %r: %s not allowed", conn.peer, bind.system_id, mode)
            return S.ESME_RBINDFAIL
        bound = sum(1 for s in self.sessions.values() if s.account.id == account.id)
        if bound >= account.max_sessions:
            log.info(
                "%s: bind as %r: already %d sessions (its maximum)",
                conn.peer,
                bind.system_id,
                bound,
            )
            return S.ESME_RBINDFAIL
        # Counted now (not in on_bound): two binds racing cannot both take the last slot.
        now = time.time()
        self.sessions[conn] = Session(account, now, id=next(self._session_ids))
        return S.ESME_ROK

    def _failed_bind(self, ip: str | None) -> None:
        if self.guesses.failed(ip):
            guard.EVENTS.emit(
                guard.GUESSING_THROTTLED,
                "SMPP bind guessing: source blocked",
                client_ip=ip,
                source=guard.source_key(ip),
                failed_binds=self.guesses.limit,
                window_s=self.guesses.window_s,
                cooldown_s=self.guesses.cooldown_s,
            )

    def _refuse_source(self, customer: Customer, conn: SmscConnection) -> tuple[str, str] | None:
        """(security event, reason) when the customer's whitelist does not allow this source."""
        if customer.networks:
            try:
                address = ipaddress.ip_address(_ip(conn) or "")
            except ValueError:
                return guard.UNKNOWN_SOURCE, "source address unknown"
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            if not any(address in net for net in customer.networks):
                return guard.NOT_WHITELISTED, f"source IP {address} is not whitelisted for SMPP"
        elif self.service.settings.require_whitelist:
            return guard.NO_WHITELIST, "customer has no whitelist and the platform requires one"
        if customer.client_cert_sha256 and _cert_sha256(conn) != customer.client_cert_sha256:
            return guard.CERT_MISMATCH, "client certificate does not match the customer's"
        return None

    def on_bound(self, conn: SmscConnection) -> None:
        session = self.sessions.get(conn)
        log.info(
            "%s: bound as %r (%s)",
            conn.peer,
            conn.system_id,
            conn.bind_kind,
            extra={"customer": session.account.customer if session else None},
        )
        if conn.can_receive:
            self.receipts.wake()
            self.mo.wake()

    def on_closed(self, conn: SmscConnection) -> None:
        self.sessions.pop(conn, None)

    # -- operators' view (the admin listener; it may run on another thread) ----------------

    def list_sessions(self) -> list[SmppSessionInfo]:
        """Every bound session: account, peer, window in use, counts and rate."""
        now = time.time()
        return [
            SmppSessionInfo(
                id=s.id,
                system_id=s.account.system_id,
                customer=s.account.customer,
                bind=conn.bind_kind or "",
                peer=conn.peer,
                tls=_cert_channel(conn),
                bound_ms=int(s.bound_at * 1000),
                window_in_use=conn.outstanding_requests,
                window=self.window,
                submitted=s.submitted,
                refused=s.refused,
                receipts=s.receipts,
                inbound=s.inbound,
                submit_rate=s.rate(now),
            )
            for conn, s in sorted(list(self.sessions.items()), key=lambda item: item[1].id)
            if conn.bound
        ]

    def disconnect(self, session_id: int) -> bool:
        """Close one session (answers already queued are flushed first); False if none."""
        for conn, session in list(self.sessions.items()):
            if session.id == session_id:
                log.info("%s: session of %r closed by an operator", conn.peer, conn.system_id)
                if self._loop is not None:
                    self._loop.call_soon_threadsafe(conn.close)
                return True
        return False

    def delivered(self, conn: SmscConnection, what: str) -> None:
        """A deliver_sm (a receipt or an MO) was answered on ``conn`` (counted for operators)."""
        session = self.sessions.get(conn)
        if session is not None:
            if what == "mo":
                session.inbound += 1
            else:
                session.receipts += 1

    def receivers(self) -> dict[int, tuple[SmppAccount, list[SmscConnection]]]:
        """account id → (the account, its bound sessions that may receive deliver_sm)."""
        found: dict[int, tuple[SmppAccount, list[SmscConnection]]] = {}
        for conn, session in self.sessions.items():
            if conn.can_receive and conn.is_open:
                found.setdefault(session.account.id, (session.account, []))[1].append(conn)
        return found

    # -- submit_sm and submit_multi ---------------------------------------------------------

    def handle_request(self, conn: SmscConnection, pdu: Pdu) -> None:
        if not isinstance(pdu, SubmitSm | SubmitMulti):
            super().handle_request(conn, pdu)  # data_sm, query_sm…: not (yet)
            return
        if conn.outstanding_requests >= self.window:
            conn.answer(pdu, S.ESME_RTHROTTLED)
            return
        conn.outstanding_requests += 1
        if not is_part(pdu):
            self._spawn(self._submit(conn, pdu, [(conn, pdu, b"")]))
            return
        session = self.sessions.get(conn)
        try:
            if session is None:
                raise Refused(S.ESME_RINVBNDSTS, "not bound")
            whole = self.concat.add(session.account.id, conn, pdu)
        except Refused as exc:
            self._refused(conn, exc.status, exc.reason)
            self._answer_parts([(conn, pdu, b"")], exc.status, "")
            return
        if whole is not None:  # the last part: accept the message, then answer every part
            self._spawn(self._submit(conn, *whole))

    async def _submit(self, conn: SmscConnection, pdu: Submit, parts: list[Part]) -> None:
        """Accept ``pdu`` (one submit_sm / submit_multi, or the merged parts), answer ``parts``.

        Every part of a submit_multi gets the same unsuccess_sme as the message.
        """
        try:
            status, message_id, unsuccess = await self._accept(conn, pdu)
        except Exception:
            log.exception("%s: unexpected failure accepting %s", conn.peer, type(pdu).__name__)
            status, message_id, unsuccess = S.ESME_RSYSERR, "", ()
        self._answer_parts(parts, status, message_id, unsuccess)

    def _answer_parts(
        self,
        parts: list[Part],
        status: int,
        message_id: str,
        unsuccess: tuple[UnsuccessSme, ...] = (),
    ) -> None:
        for part_conn, part, _ in parts:
            part_conn.outstanding_requests -= 1
            if isinstance(part, SubmitMulti):
                part_conn.answer(part, status, message_id=message_id, unsuccess_smes=unsuccess)
            else:
                part_conn.answer(part, status, message_id=message_id)
        self._count(parts[-1][0], status)

    def _count(self, conn: SmscConnection, status: int) -> None:
        session = self.sessions.get(conn)
        if session is not None:
            session.count_submit(time.time())
            if status:
                session.refused += 1
            else:
                session.submitted += 1

    def _parts_expired(self, parts: list[Part], why: str) -> None:
        """A concatenated message that never completed: its parts are refused, nothing kept."""
        log.info("%s: concatenated message dropped: %s", parts[-1][0].peer, why)
        self._answer_parts(parts, S.ESME_RSUBMITFAIL, "")

    async def _accept(self, conn: SmscConnection, pdu: SubmitSm | SubmitMulti) -> Answer:
        """The answer to one submit_sm or submit_multi, after the durable commit if accepted.

        A submit_multi is one packet: every destination is decided as a UIP recipient is, the
        refused ones are listed in unsuccess_sme, and message_id is the first accepted
        recipient's SMS_UID, which the others' receipts carry too (``smpp_message_id``). None
        accepted: the first refused destination's status, as a submit_sm to it would get.
        """
        session = self.sessions.get(conn)
        if session is None:
            return S.ESME_RINVBNDSTS, "", ()
        account = session.account
        service = self.service
        if service.draining or service.writer.pending() > service.settings.pending_writes_limit:
            return self._refused(conn, S.ESME_RTHROTTLED, "the platform is busy: retry shortly")
        config = service.config.current
        customer = customer_by_id(config, account.customer_id)
        if customer is None:
            return self._refused(conn, S.ESME_RSUBMITFAIL, "the customer is disabled")
        now = utcnow()
        try:
            reading = read_submit(
                pdu,
                route=account.route,
                serial=pdu.sequence_number % 65535 + 1,
                now=now,
                max_schedule=service.max_schedule,
            )
        except Refused as exc:
            return self._refused(conn, exc.status, exc.reason)
        request = reading.request
        recipients = len(request.recipients)
        if not recipients:  # a submit_multi none of whose destinations can be a recipient
            status = reading.unsuccess[0][1].error_status_code
            return self._refused(conn, status, "no destination is an E.164 address")
        route = config.snapshot.routes_by_name.get(request.route_id)
        plan = plan_content(
            request.content,
            None,
            None,
            latin1_ok=route is not None
            and route.latin1
            and config.routing.latin1_capable(request.route_id),
        )
        if plan.length_bytes > MAX_CONTENT_BYTES or plan.segments > MAX_SEGMENTS:
            return self._refused(
                conn, S.ESME_RINVMSGLEN, f"{plan.segments} segments; at most {MAX_SEGMENTS}"
            )
        if account.throughput and not self._bucket(account).take(plan.segments * recipients):
            return self._refused(
                conn, S.ESME_RTHROTTLED, f"over {account.throughput} segments/s", quiet=True
            )
        full = service.over_backlog(customer, recipients)
        if full is not None:
            return self._refused(conn, S.ESME_RMSGQFUL, full)
        result = plan_packet(
            request,
            customer,
            config,
            plan,
            route=route,
            sender=request.original_addr or customer.default_sender or PLATFORM_SENDER,
            uids=service.uids,
            now_ms=int(now.timestamp() * 1000),
            packet_key=None,
        )
        unsuccess = refused_destinations(reading, result.codes)
        if result.write is None:
            return self._refused(conn, unsuccess[0][1].error_status_code, result.refused[0][2])
        write = result.write
        message_id = write.messages[0].sms_uid
        changes: dict[str, object] = {}
        bits = pdu.registered_delivery & 0x03
        if bits:  # receipts asked for: they go to this account's sessions, not to HTTP
            mode = RECEIPT_ON_FAILURE if bits == RECEIPT_ON_FAILURE else RECEIPT_FINAL
            changes.update(smpp_account_id=account.id, smpp_receipt=mode)
        if reading.expires_ms is not None:  # validity_period: the messages' own deadline
            changes["expires_ms"] = reading.expires_ms
        if changes or len(write.messages) > 1:
            write = dataclasses.replace(
                write,
                messages=tuple(
                    dataclasses.replace(
                        m,
                        smpp_message_id=None if m.sms_uid == message_id else message_id,
                        **changes,  # type: ignore[arg-type]
                    )
                    for m in write.messages
                ),
            )
        try:
            await service.writer.write(write)
        except StoreError:
            log.exception(
                "store write failed; submit_sm refused", extra={"customer": customer.name}
            )
            return S.ESME_RSYSERR, "", ()
        service.backlog.added(customer.id, result.accepted)
        if service.on_accepted is not None:
            service.on_accepted()
        return S.ESME_ROK, message_id, tuple(entry for _, entry in unsuccess)

    def _bucket(self, account: SmppAccount) -> SegmentBucket:
        bucket = self._buckets.get(account.system_id)
        if bucket is None:
            bucket = self._buckets[account.system_id] = SegmentBucket(account.throughput)
        return bucket

    def _refused(
        self, conn: SmscConnection, status: int, reason: str, *, quiet: bool = False
    ) -> Answer:
        if not quiet:
            log.info(
                "%s: submit from %r refused (0x%08X): %s",
                conn.peer,
                conn.system_id,
                status,
                reason,
            )
        return status, "", ()


def refused_destinations(
    reading: Submission, codes: tuple[ResultCode, ...]
) -> tuple[tuple[int, UnsuccessSme], ...]:
    """(place in the PDU, unsuccess_sme) of every refused destination, in the PDU's order:
    those refused before planning and the recipients ``plan_packet`` refused (``codes``)."""
    planned = [
        (
            reading.positions[i],
            unsuccess_of(reading.addresses[i], STATUS_OF.get(code, S.ESME_RSUBMITFAIL)),
        )
        for i, code in enumerate(codes)
        if code is not ResultCode.OK
    ]
    if not reading.unsuccess:
        return tuple(planned)
    return tuple(sorted([*reading.unsuccess, *planned], key=lambda entry: entry[0]))


def customer_by_id(config: PreparedConfig, customer_id: int) -> Customer | None:
    """The enabled customer with this id in the loaded configuration, or None."""
    for customer in config.snapshot.customers_by_key.values():
        if customer.id == customer_id:
            return customer
    return None


def _cert_channel(conn: SmscConnection) -> bool:
    """Whether the session runs over TLS."""
    transport = conn.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


def _cert_sha256(conn: SmscConnection) -> str | None:
    """SHA-256 (hex) of the client certificate of a TLS session, None without one."""
    transport = conn.transport
    tls = transport.get_extra_info("ssl_object") if transport is not None else None
    der = tls.getpeercert(binary_form=True) if tls is not None else None
    return hashlib.sha256(der).hexdigest() if der else None


def _ip(conn: SmscConnection) -> str | None:
    transport = conn.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if peer else None
