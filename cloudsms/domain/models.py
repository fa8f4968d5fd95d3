"""Value objects shared by the API, the store and the workers.

The API builds ``NewMessage`` and ``PacketWrite`` values from a validated packet; the store
persists them (made per message, they are not frozen: see ``domain/pipeline.py``; the rest
are). ``ConfigSnapshot`` is the operator configuration the hot path reads from memory, reloaded
whenever ``config_version`` changes (within a second of any operator change).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from cloudsms.domain.pipeline import OutboundMessage
from cloudsms.domain.status import MessageState
from cloudsms.smpp.encoding import Encoding

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ApprovalStatus = Literal["pending", "approved", "rejected"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Customer:
    id: int
    name: str
    auth_key: str
    enabled: bool
    currency: str
    credit_limit_micros: int
    price_list_id: int | None
    callback_url: str | None
    default_sender: str | None
    client_cert_sha256: str | None
    max_backlog: int | None
    report_intermediate: bool
    #: Source networks allowed to use the key; empty means any source.
    networks: tuple[Network, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    id: int
    name: str
    latin1: bool
    #: False: suspended by an operator; recipients get Send_failed.
    enabled: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class CountryPolicy:
    country_code: int
    region: str
    requires_template: bool
    requires_signature: bool
    requires_registered_sender: bool
    sender_format: Literal["any", "numeric", "alpha"]
    note: str | None = None
    #: Opt-out / opt-in keywords of the destination's handsets (``domain/opt_out.py``);
    #: None: the platform's defaults (STOP, UNSUBSCRIBE, 退订, TD / START).
    opt_out_keywords: tuple[str, ...] | None = None
    opt_in_keywords: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    id: int
    customer_id: int
    body: str
    country_code: int | None
    status: ApprovalStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigSnapshot:
    """Everything the accept path needs, keyed for O(1) lookups."""

    version: int
    customers_by_key: dict[str, Customer] = field(default_factory=dict)
    #: price_list_id → {prefix digits → price per segment in micro-units}
    prices: dict[int, dict[str, int]] = field(default_factory=dict)
    routes_by_name: dict[str, Route] = field(default_factory=dict)
    #: (customer_id, route_id) pairs
    grants: frozenset[tuple[int, int]] = frozenset()
    blacklist_global: frozenset[str] = frozenset()
    blacklist_by_customer: dict[int, frozenset[str]] = field(default_factory=dict)
    #: customer_id → numbers (calling code + MSISDN digits) on its opt-out list (STOP).
    opt_outs_by_customer: dict[int, frozenset[str]] = field(default_factory=dict)
    policies: dict[int, CountryPolicy] = field(default_factory=dict)
    #: customer_id → approved signature texts
    signatures: dict[int, frozenset[str]] = field(default_factory=dict)
    #: customer_id → approved templates
    templates: dict[int, tuple[Template, ...]] = field(default_factory=dict)
    #: customer_id → approved (sender, country_code or None) pairs
    senders: dict[int, frozenset[tuple[str, int | None]]] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class NewMessage:
    """One accepted recipient, as the API hands it to the store."""

    sms_uid: str
    customer_id: int
    serial: int
    country_code: int
    dest_msisdn: str
    route_name: str
    sender: str
    content: str
    encoding: Encoding
    segments: int
    priority: int
    send_at_ms: int
    customer_body: str | None
    #: ACCEPTED, or REJECTED for a LOCAL_REJECTED recipient (then fee is 0).
    state: MessageState
    result_desc: str | None
    detail: str | None
    fee_micros: int
    currency: str
    created_ms: int
    #: Submitted over SMPP with registered_delivery: the account whose sessions get the
    #: receipts (deliver_sm) and the receipt bits (1: final, 2: failure only); None: HTTP.
    smpp_account_id: int | None = None
    smpp_receipt: int | None = None
    #: Its own deadline (SMPP validity_period): not final by then, it is EXPIRED; None: only
    #: the platform's expiry after submission applies.
    expires_ms: int | None = None
    #: The message_id its SMPP receipts carry when it is not its own SMS_UID (a submit_multi's
    #: recipients share the first one's); None: the SMS_UID.
    smpp_message_id: str | None = None


@dataclass(slots=True, kw_only=True)
class PacketWrite:
    """One packet's accepted recipients plus its answer, committed in one transaction."""

    customer_id: int
    #: None when the packet is not replay-protected (replay window 0).
    packet_key: str | None
    messages: tuple[NewMessage, ...]
    #: The serialized ANSWER to return now and on any replay of the packet.
    answer: bytes
    created_ms: int


@dataclass(slots=True)
class PacketOutcome:
    """What the store did with a PacketWrite."""

    #: The answer to send: the new one, or the original answer when the packet was a replay.
    answer: bytes
    replayed: bool
    #: SMS_UIDs turned LOCAL_REJECTED in the transaction because the balance ran out.
    balance_rejected: tuple[str, ...] = ()
    #: Messages claimed in the transaction for this process's dispatcher (``LocalClaim``).
    claimed: tuple[OutboundMessage, ...] = ()
