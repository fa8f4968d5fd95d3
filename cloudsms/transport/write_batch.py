"""Writes to many sockets, made back to back once per event-loop iteration.

Why: on this project's machine kind a socket write that wakes a peer process asleep in
``epoll_wait`` costs the writer 25–40 µs of CPU (the kernel's wake-up is charged to the sender;
``bench/machine.py`` prints it as ``exchange_cpu_us``), while writes that reach a peer already
awake cost 5–10 µs. A process that answers many connections one at a time, with tens of
microseconds of Python between two writes, lets the peer fall asleep between them and pays the
wake-up on almost every write. Gathering the writes of one loop iteration and making them one
after the other pays it about once per iteration.

A write queued here leaves at the end of the current iteration's ready callbacks (the flush is
scheduled with ``call_soon`` by the first write), in the order queued; a transport closing by
then drops its bytes, as its own ``write`` would have. Write directly (``transport.write``)
where the bytes must be queued before something else happens to the transport, such as a
``close()`` right after — after ``flush()``, so that they follow what this batch holds.
"""

from __future__ import annotations

import asyncio


class WriteBatch:
    """Writes to the transports of one owner (a listener, a client) on one event loop,
    flushed together at the end of the iteration that queued them."""

    __slots__ = ("_loop", "_pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: list[tuple[asyncio.BaseTransport, bytes]] = []

    def write(self, transport: asyncio.BaseTransport, data: bytes) -> None:
        """Queue ``data`` for ``transport``; it is written before the loop next polls."""
        pending = self._pending
        pending.append((transport, data))
        if len(pending) == 1:
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write everything queued now (also called before a direct write that must follow)."""
        pending, self._pending = self._pending, []
        for transport, data in pending:
            if not transport.is_closing():
                transport.write(data)  # type: ignore[attr-defined]
