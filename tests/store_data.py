"""Messages accepted through the store itself, for the store's own tests."""

from __future__ import annotations

import time

from seed import Seeded

from cloudsms.domain.models import NewMessage, PacketWrite
from cloudsms.domain.status import MessageState
from cloudsms.storage.store import Store


def now() -> int:
    """Epoch milliseconds, as the store's callers pass them."""
    return time.time_ns() // 1_000_000


def accept(store: Store, seeded: Seeded, uids: list[str], *, segments: int = 1,
           priority: int = 0, send_at: int | None = None, fee: int = 50_000,
           customer_body: str | None = None) -> None:  # fmt: skip
    """One packet of ACCEPTED single-recipient messages (``uids``) for ``seeded``'s customer."""
    stamp = now()
    messages = tuple(
        NewMessage(
            sms_uid=uid, customer_id=seeded.customer_id, serial=1, country_code=852,
            dest_msisdn=f"6700{i:04d}", route_name=seeded.route, sender="CloudSMS",
            content="hello", encoding="gsm7", segments=segments, priority=priority,
            send_at_ms=send_at if send_at is not None else stamp, customer_body=customer_body,
            state=MessageState.ACCEPTED, result_desc=None, detail=None, fee_micros=fee,
            currency="HKD", created_ms=stamp,
        )
        for i, uid in enumerate(uids)
    )  # fmt: skip
    store.accept_packets(
        [PacketWrite(customer_id=seeded.customer_id, packet_key=None, messages=messages,
                     answer=b"{}", created_ms=stamp)],
        replay_window_ms=0,
    )  # fmt: skip
