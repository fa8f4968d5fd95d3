"""Process-local memory of recent answers, so a blind retry is answered without the store.

The store's ``replays`` table is the authority (it also catches retries that reach another
process or arrive after a restart); this cache only saves the round trip to the writer.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict


def packet_key(customer_id: int, body: bytes) -> str:
    """The fingerprint of a packet: same key, SERIAL, TIME and body ⇔ same raw bytes."""
    digest = hashlib.sha256(customer_id.to_bytes(8, "big"))
    digest.update(body)
    return digest.hexdigest()


class ReplayCache:
    def __init__(self, window_s: float, max_entries: int = 200_000) -> None:
        self._window_s = window_s
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, answer = entry
        if time.monotonic() - stored_at > self._window_s:
            del self._entries[key]
            return None
        return answer

    def put(self, key: str, answer: bytes) -> None:
        self._entries[key] = (time.monotonic(), answer)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
