"""The UIP endpoint: POST /dave/io → ANSWER (SPEC §1–3).

Strategy: ``UipService.handle`` takes the raw body and the caller's network identity and returns
(HTTP status, ANSWER bytes); it never raises. The listener's HTTP protocol
(``cloudsms.api.http_protocol``) calls it directly, having enforced the body limit while
reading, so an oversized body is refused before it is buffered.

The answer leaves only after the group-commit writer has committed the packet's messages and its
debit (durable acceptance). A packet identical to one answered within the replay window gets the
original answer back and nothing is stored twice.

Every refusal says why: the ANSWER carries RESULT_DETAIL (one sentence) beside RESULT_DESC, and
the refusal is logged with the customer (``cloudsms.api.refusals``, budgeted per customer).
Refusals that are security events (unknown key, source or certificate not allowed) are logged
there instead, and a source blocked for guessing keys is answered without a line.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from cloudsms import metrics
from cloudsms.api import guard
from cloudsms.api.accept import plan_packet
from cloudsms.api.answers import answer, top_level_code
from cloudsms.api.backlog import BacklogGauge
from cloudsms.api.guard import EVENTS, GuessThrottle
from cloudsms.api.limits import RateLimits, parse_overrides
from cloudsms.api.refusals import RefusalLog, not_json
from cloudsms.api.replay import ReplayCache
from cloudsms.config import Settings
from cloudsms.domain.codes import ResultCode
from cloudsms.domain.content import MAX_CONTENT_BYTES, MAX_SEGMENTS, ContentPlan, plan_content
from cloudsms.domain.ids import UidGenerator
from cloudsms.domain.inbound import MO_QUERY_METHOD, mo_entry, read_mo_query
from cloudsms.domain.models import Customer, PacketOutcome, PacketWrite
from cloudsms.domain.packet import (
    SEND_METHOD,
    PacketError,
    key_owner,
    read_auth_key,
    read_envelope,
    read_send_request,
    serial_of,
)
from cloudsms.domain.query import QUERY_METHOD, read_uid_list, result_entry
from cloudsms.domain.replay_keys import packet_key
from cloudsms.domain.status import MessageState
from cloudsms.domain.timefmt import utcnow
from cloudsms.exceptions import StoreError
from cloudsms.services.config_cache import ConfigCache
from cloudsms.storage.interfaces import MessageQueries

log = logging.getLogger("cloudsms.api")

#: Platform default sender when neither the packet nor the customer names one (document example).
PLATFORM_SENDER = "CloudSMS"


METHODS = frozenset({SEND_METHOD, QUERY_METHOD, MO_QUERY_METHOD})
#: (HTTP status, ANSWER bytes, top-level RESULT_CODE, recipients in the packet)
Reply = tuple[int, bytes, int, int]


class PacketWriter(Protocol):
    async def write(self, packet: PacketWrite) -> PacketOutcome: ...
    def pending(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is on the other end of the connection."""

    ip: str | None
    #: SHA-256 of the client certificate (mutual TLS), hex lower case.
    cert_sha256: str | None = None


class UipService:
    def __init__(
        self,
        settings: Settings,
        config: ConfigCache,
        writer: PacketWriter,
        backlog: BacklogGauge,
        uids: UidGenerator | None = None,
        *,
        store: MessageQueries | None = None,
        on_accepted: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.writer = writer
        self.backlog = backlog
        self.uids = uids or UidGenerator()
        self.store = store
        #: Called after each newly stored packet (the dispatcher's wake-up in a single process).
        self.on_accepted = on_accepted
        self.replays = ReplayCache(settings.replay_window_s) if settings.replay_window_s else None
        self.max_schedule = dt.timedelta(days=settings.max_schedule_days)
        #: Set while shutting down: new packets get Busy.
        self.draining = False
        #: Packets inside ``handle`` now; over ``max_inflight`` a packet gets Busy at once
        #: instead of joining the queue for the store (load shedding, issue 6 point 4).
        self.inflight = 0
        self.max_inflight = settings.max_inflight_packets or 1 << 62
        self.rates = RateLimits(
            settings.customer_packets_per_s,
            settings.customer_messages_per_s,
            parse_overrides(settings.customer_rate_overrides),
        )
        self._rates_on = self.rates.enabled
        self.guesses = GuessThrottle(
            limit=settings.key_guess_limit,
            window_s=settings.key_guess_window_s,
            cooldown_s=settings.key_guess_cooldown_s,
        )
        self.refusals = RefusalLog()

    async def handle(self, body: bytes, caller: Caller) -> tuple[int, bytes]:
        """Answer one packet; any unexpected failure becomes Unknown_error, never a traceback."""
        self.inflight += 1
        try:
            status, payload, code, recipients = await self._handle(body, caller)
        except Exception:
            log.exception(
                "unexpected failure while answering a packet", extra={"client_ip": caller.ip}
            )
            status, payload, code, recipients = _refusal(
                ResultCode.UNKNOWN_ERROR, 0, reason="unexpected internal failure (logged)"
            )
        finally:
            self.inflight -= 1
        metrics.packet_answered(code, recipients)
        return status, payload

    async def _handle(self, body: bytes, caller: Caller) -> Reply:
        if not body.strip():
            return self._refused(caller, None, ResultCode.EMPTY_BODY, 0, "the HTTP body is empty")
        try:
            packet = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return self._refused(caller, None, ResultCode.INVALID_CONTEXT, 0, not_json(body, exc))
        serial = serial_of(packet)
        method = packet.get("METHOD") if isinstance(packet, dict) else None
        if not (isinstance(method, str) and method in METHODS):
            method = SEND_METHOD  # echo the packet's METHOD only when it is one we know
        if self.guesses.blocked(caller.ip):
            # In its cool-down after guessing keys: no lookup, no log line (logged at the start).
            return _refusal(
                ResultCode.CHANNEL_NOT_EXIST, serial, method=method, reason=GUESSING_BLOCKED
            )
        config = self.config.current
        try:
            envelope = read_envelope(packet, METHODS)
            auth_key = read_auth_key(packet)
        except PacketError as exc:
            # Not yet authenticated: the log names the key's owner, the answer nothing more.
            owner = key_owner(packet, config.customer_for_key)
            return self._refused(caller, owner, exc.code, serial, exc.reason, method=method)
        customer = config.customer_for_key(auth_key)
        if customer is None:
            self._unknown_key(caller)
            return _refusal(
                ResultCode.CHANNEL_NOT_EXIST, serial, method=method, reason=UNKNOWN_KEY_REASON
            )
        refusal = self._refuse_caller(customer, caller)
        if refusal is not None:
            event, reason = refusal
            EVENTS.emit(event, reason, client_ip=caller.ip, customer=customer.name)
            return _refusal(
                ResultCode.CHANNEL_NOT_EXIST, serial, status=403, method=method, reason=reason
            )

        if envelope.method != SEND_METHOD:  # DR_QUERY, MO_QUERY
            query = envelope.method
            if self._rates_on and not self.rates.allow(customer.id, customer.name, 0):
                return self._refused(
                    caller, customer.name, ResultCode.BUSY, serial, OVER_RATE, method=query
                )
            if query == MO_QUERY_METHOD:
                return 200, await self._mo_query(packet, customer, serial), ResultCode.OK, 0
            return 200, await self._query(packet, customer, serial), ResultCode.OK, 0

        key = (
            packet_key(customer.id, envelope.time, envelope.serial, body)
            if self.replays is not None
            else None
        )
        if key is not None and self.replays is not None:
            previous = self.replays.get(key)
            if previous is not None:
                return 200, previous, ResultCode(orjson.loads(previous)["RESULT_CODE"]), 0
        if (
            self.draining
            or self.inflight > self.max_inflight
            or self.writer.pending() > self.settings.pending_writes_limit
        ):
            why = SHUTTING_DOWN if self.draining else OVERLOADED
            return self._refused(caller, customer.name, ResultCode.BUSY, serial, why)

        now = utcnow()  # one clock reading for the schedule check and the messages' times
        try:
            request = read_send_request(packet, envelope, now=now, max_schedule=self.max_schedule)
            route = config.snapshot.routes_by_name.get(request.route_id)
            plan = plan_content(
                request.content,
                request.signature,
                request.signature_type,
                # Latin-1 only where the operator allows it and every carrier behind takes DCS 3.
                latin1_ok=route is not None
                and route.latin1
                and config.routing.latin1_capable(request.route_id),
            )
            if plan.length_bytes > MAX_CONTENT_BYTES or plan.segments > MAX_SEGMENTS:
                raise PacketError(ResultCode.INVALID_CONTEXT, _too_long(plan))
        except PacketError as exc:
            return self._refused(caller, customer.name, exc.code, serial, exc.reason)

        # Per-customer rate (Busy: retry later) before the backlog (Queue_too_large): a packet
        # over its rate must not count against anything.
        if self._rates_on and not self.rates.allow(
            customer.id, customer.name, len(request.recipients)
        ):
            return self._refused(caller, customer.name, ResultCode.BUSY, serial, OVER_RATE)
        full = self.over_backlog(customer, len(request.recipients))
        if full is not None:
            return self._refused(caller, customer.name, ResultCode.QUEUE_TOO_LARGE, serial, full)

        sender = request.original_addr or customer.default_sender or PLATFORM_SENDER
        result = plan_packet(
            request,
            customer,
            config,
            plan,
            route=route,
            sender=sender,
            uids=self.uids,
            now_ms=int(now.timestamp() * 1000),
            packet_key=key,
        )
        if result.refused:
            self.refusals.recipients(
                customer.name, caller.ip, serial, result.refused, len(result.codes)
            )
        if result.write is None:
            return 200, result.answer, top_level_code(list(result.codes)), len(result.codes)
        try:
            outcome = await self.writer.write(result.write)
        except StoreError:
            log.exception(
                "store write failed; packet refused with DB_not_find",
                extra={"customer": customer.name, "recipients": len(result.codes)},
            )
            return _refusal(ResultCode.DB_NOT_FIND, serial, method=method, reason=STORE_FAILED)
        if not outcome.replayed:
            self.backlog.added(customer.id, result.accepted)
            _count_accepted(result.write, outcome.balance_rejected, customer.name)
            if self.on_accepted is not None and _left_to_claim(result.write, outcome):
                self.on_accepted()
        if key is not None and self.replays is not None:
            self.replays.put(key, outcome.answer)
        return 200, outcome.answer, top_level_code(list(result.codes)), len(result.codes)

    async def _query(self, packet: dict[str, Any], customer: Customer, serial: int) -> bytes:
        """DR_QUERY (an extension, see cloudsms.domain.query): the caller's own messages only."""
        try:
            read_envelope(packet, METHODS)
            uids = read_uid_list(packet)
        except PacketError as exc:
            self.refusals.packet(customer.name, None, serial, exc.code, exc.reason)
            return answer(QUERY_METHOD, serial, exc.code, with_details=False, reason=exc.reason)
        if self.store is None:
            return answer(QUERY_METHOD, serial, ResultCode.UNKNOWN_ERROR, with_details=False)
        try:
            records = await asyncio.to_thread(self.store.customer_messages, customer.id, uids)
        except StoreError:
            log.exception("report query failed", extra={"customer": customer.name})
            return answer(
                QUERY_METHOD,
                serial,
                ResultCode.DB_NOT_FIND,
                with_details=False,
                reason=STORE_FAILED,
            )
        by_uid = {r.sms_uid: r for r in records}
        body = orjson.loads(answer(QUERY_METHOD, serial, ResultCode.OK, with_details=False))
        body["SMS_RESULT_LIST"] = [result_entry(uid, by_uid.get(uid)) for uid in uids]
        return orjson.dumps(body)

    async def _mo_query(self, packet: dict[str, Any], customer: Customer, serial: int) -> bytes:
        """MO_QUERY (an extension, see cloudsms.domain.inbound): the caller's inbound messages,
        oldest first after SINCE_MO_UID; a pull beside SMS_PUSH_MO, which goes on as before."""
        try:
            since, limit = read_mo_query(packet)
        except PacketError as exc:
            self.refusals.packet(customer.name, None, serial, exc.code, exc.reason)
            return answer(MO_QUERY_METHOD, serial, exc.code, with_details=False, reason=exc.reason)
        if self.store is None:
            return answer(MO_QUERY_METHOD, serial, ResultCode.UNKNOWN_ERROR, with_details=False)
        try:
            found = await asyncio.to_thread(self.store.customer_inbound, customer.id, since, limit)
        except StoreError:
            log.exception("inbound query failed", extra={"customer": customer.name})
            return answer(MO_QUERY_METHOD, serial, ResultCode.DB_NOT_FIND, with_details=False,
                          reason=STORE_FAILED)  # fmt: skip
        body = orjson.loads(answer(MO_QUERY_METHOD, serial, ResultCode.OK, with_details=False))
        body["MO_LIST"] = [mo_entry(mo) for mo in found]
        return orjson.dumps(body)

    def _unknown_key(self, caller: Caller) -> None:
        """Log an unknown key and count it towards the source's guessing throttle."""
        if self.guesses.failed(caller.ip):
            EVENTS.emit(
                guard.GUESSING_THROTTLED,
                "AUTH_KEY guessing: source blocked",
                client_ip=caller.ip,
                source=guard.source_key(caller.ip),
                unknown_keys=self.guesses.limit,
                window_s=self.guesses.window_s,
                cooldown_s=self.guesses.cooldown_s,
            )
        else:
            EVENTS.emit(guard.UNKNOWN_KEY, "unknown or disabled AUTH_KEY", client_ip=caller.ip)

    def _refuse_caller(self, customer: Customer, caller: Caller) -> tuple[str, str] | None:
        """(security event, reason) why this connection may not use the key, or None."""
        if customer.networks:
            try:
                address = ipaddress.ip_address(caller.ip or "")
            except ValueError:
                return guard.UNKNOWN_SOURCE, "source address unknown"
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            if not any(address in net for net in customer.networks):
                return guard.NOT_WHITELISTED, f"source IP {address} is not whitelisted for this key"
        elif self.settings.require_whitelist:
            return guard.NO_WHITELIST, "key has no whitelist and the platform requires one"
        if customer.client_cert_sha256 and caller.cert_sha256 != customer.client_cert_sha256:
            return guard.CERT_MISMATCH, "client certificate does not match the key"
        return None

    def over_backlog(self, customer: Customer, count: int) -> str | None:
        """Why ``count`` more messages would be Queue_too_large, or None."""
        limit = customer.max_backlog or self.settings.customer_max_backlog
        waiting = self.backlog.customer(customer.id)
        if waiting + count > limit:
            return (
                f"{waiting} messages of this account are waiting to be sent; {count} more would"
                f" pass its limit of {limit}: send again after a pause"
            )
        if self.backlog.total() + count > self.settings.max_backlog:
            return "the platform's backlog of messages waiting to be sent is full: send again later"
        return None

    def _refused(
        self,
        caller: Caller,
        customer: str | None,
        code: ResultCode,
        serial: int,
        reason: str,
        *,
        method: str = SEND_METHOD,
    ) -> Reply:
        """Log a packet's refusal with its customer and answer it with the reason."""
        self.refusals.packet(customer, caller.ip, serial, code, reason)
        return _refusal(code, serial, method=method, reason=reason)


#: RESULT_DETAIL of refusals that need no packet-specific words.
GUESSING_BLOCKED = "too many unknown AUTH_KEYs from this address: refused for a while"
UNKNOWN_KEY_REASON = "AUTH_KEY is unknown or disabled"
SHUTTING_DOWN = "the platform is shutting down: send the same bytes again shortly"
OVERLOADED = "the platform is overloaded: send the same bytes again after a pause"
OVER_RATE = "over this account's rate limit: send the same bytes again after a pause"
STORE_FAILED = "the platform could not store the request, so nothing was done: try again later"


def _too_long(plan: ContentPlan) -> str:
    if plan.length_bytes > MAX_CONTENT_BYTES:
        return (
            f"SMS_CONTENT with its signature is {plan.length_bytes} bytes; at most"
            f" {MAX_CONTENT_BYTES} (every character counts 2 bytes when any is not ASCII)"
        )
    return (
        f"SMS_CONTENT with its signature needs {plan.segments} segments in {plan.encoding};"
        f" at most {MAX_SEGMENTS}"
    )


def _refusal(
    code: ResultCode,
    serial: int,
    *,
    status: int = 200,
    method: str = SEND_METHOD,
    reason: str | None = None,
) -> Reply:
    body = answer(method, serial, code, with_details=method == SEND_METHOD, reason=reason)
    return status, body, code, 0


def _left_to_claim(write: PacketWrite, outcome: PacketOutcome) -> bool:
    """Whether the packet left messages in the store for a dispatcher's claim.

    Those claimed in the accept transaction went to their dispatcher already; waking it for them
    would only make it look in the store for nothing (``Dispatcher._feed_once``).
    """
    waiting = sum(1 for m in write.messages if m.state is MessageState.ACCEPTED)
    return waiting - len(outcome.balance_rejected) > len(outcome.claimed)


def _count_accepted(write: PacketWrite, balance_rejected: Sequence[str], customer: str) -> None:
    """Metrics for a stored packet: messages per state and destination, balance refusals."""
    per_country: dict[tuple[str, int], list[int]] = {}
    for message in write.messages:
        entry = per_country.setdefault((message.state.value, message.country_code), [0, 0])
        entry[0] += 1
        entry[1] += message.segments
    for (state, country), (count, segments) in per_country.items():
        metrics.message_states(state, country, count, segments)
    if balance_rejected:
        metrics.balance_low(customer, len(balance_rejected))
