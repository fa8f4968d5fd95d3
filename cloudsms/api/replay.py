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
        """Hold ``answer`` for ``key``: an exact-size copy of it (see :func:`exact_copy`)."""
        now = time.monotonic()
        if key in self._entries:
            self._drop(key)
        answer = exact_copy(answer)
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


def exact_copy(data: bytes) -> bytes:
    """``data`` in a bytes object of its own size.

    Why: orjson (3.13) hands back its output in the 4 KiB buffer it wrote it in, so a 200-byte
    ANSWER held as it came took 4 KiB, and the cache's bound (counted in ``len``) let it hold
    ~20× the memory it meant to: +95 MB of answers in the API process over 4 minutes of a
    soak (``bench/soak.py --tracemalloc``, bench/README.md). ``bytes(data)`` would return
    ``data`` itself; a copy through a memoryview allocates what the bytes need.
    """
    return bytes(memoryview(data))
