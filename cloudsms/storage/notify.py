"""Wake-ups across processes: PostgreSQL ``LISTEN``/``NOTIFY``, with polling as the fallback.

Strategy: the database is the only channel between processes, and the work queues live in it;
a notification only says "look now" and carries nothing. So a lost notification costs latency
(the pollers look anyway every 0.25 s), never a message, and a burst of events can be coalesced
into one notification:

* :class:`Notifier` sends ``pg_notify(channel, '')`` from its own thread and autocommit
  connection, at most once per ``min_interval_s`` per channel however often :meth:`notify` is
  called (an API process accepting 10,000 packets/s sends ~200 notifications/s, not 10,000).
  It is called *after* the accepting transaction committed, so the listener's claim finds the
  rows.
* :class:`Listener` holds one connection that ``LISTEN``\\ s and calls a callback per channel
  from its thread (callbacks must be thread-safe). After every (re)connect it calls every
  callback once: notifications sent while it was disconnected are lost by design.

SQLite has no such thing and needs none: it is one process, whose components wake each other
in memory. :func:`libpq_url` returns None for it and nothing here is started.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping

import psycopg
from sqlalchemy import Engine

log = logging.getLogger("cloudsms.notify")

#: New or returned work for the dispatchers (accepted packets, hand-offs, give-backs).
DISPATCH = "cloudsms_dispatch"
#: New delivery reports in the outbox.
REPORTS = "cloudsms_reports"


def libpq_url(engine: Engine) -> str | None:
    """A psycopg connection string for the engine's PostgreSQL database; None for SQLite."""
    if engine.dialect.name != "postgresql":
        return None
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class Notifier:
    """Coalescing ``NOTIFY`` sender (see the module docstring).

    Example::

        notifier = Notifier("postgresql://…")
        notifier.start()
        notifier.notify(DISPATCH)      # any thread, any rate
        notifier.close()
    """

    def __init__(self, url: str, *, min_interval_s: float = 0.005) -> None:
        self.url = url
        self.min_interval_s = min_interval_s
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="pg-notifier", daemon=True)
        #: Notifications sent (for tests and metrics).
        self.sent = 0

    def start(self) -> None:
        self._thread.start()

    def notify(self, channel: str) -> None:
        """Ask for a notification on ``channel`` soon (cheap; safe from any thread)."""
        if channel not in self._pending:
            with self._lock:
                self._pending.add(channel)
            self._event.set()

    def close(self) -> None:
        self._stopping = True
        self._event.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        backoff = 0.5
        while not self._stopping:
            self._event.wait(1.0)
            self._event.clear()
            with self._lock:
                channels, self._pending = self._pending, set()
            if not channels:
                continue
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                for channel in sorted(channels):
                    conn.execute("SELECT pg_notify(%s, '')", (channel,))
                    self.sent += 1
                backoff = 0.5
            except psycopg.Error as exc:
                # The database is away (restart): the pollers cover until it is back.
                log.warning("could not notify %s: %s", ",".join(sorted(channels)), exc)
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        conn.close()
                conn = None
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            time.sleep(self.min_interval_s)
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()


class Listener:
    """One ``LISTEN`` connection calling ``callbacks[channel]()`` from its own thread.

    Example::

        listener = Listener("postgresql://…", {DISPATCH: wake_dispatcher, REPORTS: pusher.wake})
        listener.start()
        listener.close()
    """

    def __init__(self, url: str, callbacks: Mapping[str, Callable[[], None]]) -> None:
        self.url = url
        self.callbacks = dict(callbacks)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="pg-listener", daemon=True)
        #: Notifications received, and (re)connections made (for tests and metrics).
        self.received = 0
        self.connects = 0

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stopping = True
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stopping:
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    for channel in self.callbacks:
                        conn.execute(f'LISTEN "{channel}"')
                    self.connects += 1
                    backoff = 0.5
                    self._call_all()  # whatever was sent while we were not listening
                    while not self._stopping:
                        for note in conn.notifies(timeout=1.0):
                            self.received += 1
                            callback = self.callbacks.get(note.channel)
                            if callback is not None:
                                _call(callback)
                            if self._stopping:
                                break
            except psycopg.Error as exc:
                if self._stopping:
                    return
                log.warning("LISTEN connection lost (%s); polling until it is back", exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _call_all(self) -> None:
        for callback in self.callbacks.values():
            _call(callback)


def _call(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:
        log.exception("wake-up callback failed")


__all__ = ["DISPATCH", "REPORTS", "Listener", "Notifier", "libpq_url"]
