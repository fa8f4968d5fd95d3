"""Process-local memory of recent answers, so a blind retry is answered without the store.

The store's ``replays`` table is the authority (it also catches retries that reach another
process or arrive after a restart); this cache only saves the round trip to the writer.
"""

from __future__ import annotations

import time
from collections import OrderedDict


class ReplayCache:
    """Recent answers by packet key, oldest first, bounded by age and by bytes.

    Entries older than the window are dropped from the front on every ``put`` (insertion order is
    age order), and the oldest go first whenever the answers held exceed ``max_bytes`` — a
    200-recipient ANSWER is about 20 KB, so a count limit alone would let memory grow with
    traffic. A miss here costs only a trip to the writer, where the store's ``replays`` row
    answers it.
    """

    def __init__(self, window_s: float, max_bytes: int = 16 * 1024 * 1024) -> None:
        self._window_s = window_s
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes_held(self) -> int:
        return self._bytes

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, answer = entry
        if time.monotonic() - stored_at > self._window_s:
            self._drop(key)
            return None
        return answer

    def put(self, key: str, answer: bytes) -> None:
        now = time.monotonic()
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (now, answer)
        self._bytes += len(answer)
        entries = self._entries
        while entries:
            oldest_key, (stored_at, _) = next(iter(entries.items()))
            if self._bytes <= self._max_bytes and now - stored_at <= self._window_s:
                break
            self._drop(oldest_key)

    def _drop(self, key: str) -> None:
        _, answer = self._entries.pop(key)
        self._bytes -= len(answer)
