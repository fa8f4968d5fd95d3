"""One thread that flushes SQLite's log for the event loop, sharing a flush among the commits
that wait for it.

Why a thread of its own: the flush (``SqliteWriteLock.flush_log``, an ``fdatasync``) waits for
the disk, ~0.8 ms under load; the event loop keeps serving meanwhile. Why not an executor: a
commit asks for a flush once per transaction, hundreds of times a second, and
``run_in_executor`` cost ~2 % of the API process's samples (py-spy) in Python-level bookkeeping.
Here a request is a list append under a condition variable, and the answer one
``call_soon_threadsafe`` per flush.

Sharing: every commit made before a flush *starts* is durable once it returns, so the requests
that queued up while one flush ran are all answered by the next single flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable


class LogFlusher:
    """Flushes on request in one thread; :meth:`request` returns a future done once flushed.

    Example::

        flusher = LogFlusher(lambda: lock.flush_log())
        await flusher.request()      # after a commit made without SQLite's own flush
        flusher.close()
    """

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush
        self._wanted = threading.Condition()
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closed = False
        self._thread: threading.Thread | None = None

    def request(self) -> asyncio.Future[None]:
        """A future (of the running loop) done when a flush that started after this call ends;
        it fails with the flush's error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._wanted:
            if self._closed:
                raise RuntimeError("the log flusher is closed")
            self._waiting.append((loop, future))
            self._wanted.notify()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="cloudsms-log-flush", daemon=True
                )
                self._thread.start()
        return future

    def close(self) -> None:
        """Flush for whoever still waits, then end the thread."""
        with self._wanted:
            self._closed = True
            self._wanted.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while True:
            with self._wanted:
                while not self._waiting and not self._closed:
                    self._wanted.wait()
                if not self._waiting:
                    return
                waiting, self._waiting = self._waiting, []
            error: BaseException | None = None
            try:
                self._flush()
            except BaseException as exc:  # handed to every waiter, never lost in this thread
                error = exc
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for loop, future in waiting:
                by_loop.setdefault(loop, []).append(future)
            for loop, futures in by_loop.items():
                # A closed loop raises RuntimeError: nobody waits there any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, futures, error)


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
