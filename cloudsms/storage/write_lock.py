"""The queue SQLite writers wait in: threads on a lock, processes on an ``flock``.

SQLite has one writer at a time. A writer that finds the database locked waits in SQLite's busy
handler, which polls with sleeps of 1, 2, 5, 10 … up to 100 ms: under load the API's group
commit and a worker's dispatch transactions (``--role api`` and ``--role worker`` on one SQLite
file) kept missing each other and sleeping. Here a writer blocks in the kernel instead and is
woken the moment the lock is free: threads of one process queue on a re-entrant lock, processes
on an exclusive ``flock`` of a file next to the database (``<database>-writelock``). The kernel
drops a dead process's ``flock`` with its file descriptor, so a crash cannot leave it held.

Processes that do not take this lock (an old CLI, the ``sqlite3`` shell) still meet the busy
handler: the lock orders cooperating writers, SQLite's own lock still guards the file.
"""

from __future__ import annotations

import fcntl
import os
import threading
from types import TracebackType


class SqliteWriteLock:
    """Re-entrant within a thread; exclusive across the threads and processes using ``path``.

    The event loop's write gate (``cloudsms.storage.gate``) waits for the lock to be free in a
    helper thread (:meth:`wait_free`), so the loop is never blocked in the queue, and then takes
    it on the loop thread without waiting (:meth:`try_acquire_for`).
    """

    def __init__(self, path: str | None) -> None:
        #: None: a private database (``:memory:``), no other process can see it.
        self.path = path
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._fd: int | None = None
        self._fd_pid = 0

    def _file(self) -> int:
        # An flock belongs to the open file: a forked child must open its own or it would share
        # (and release) its parent's lock.
        if self._fd is None or self._fd_pid != os.getpid():
            assert self.path is not None
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fd_pid = os.getpid()
        return self._fd

    def __enter__(self) -> SqliteWriteLock:
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            return self
        self.acquire_for(me)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire_for(self, owner: int) -> None:
        """Wait for the lock (without the GIL) and make thread ``owner`` its holder."""
        self._mutex.acquire()
        try:
            if self.path is not None:
                fcntl.flock(self._file(), fcntl.LOCK_EX)  # blocks without the GIL
        except BaseException:
            self._mutex.release()
            raise
        self._owner, self._depth = owner, 1

    def try_acquire_for(self, owner: int) -> bool:
        """:meth:`acquire_for` if the lock is free at once; False (nothing taken) otherwise."""
        if not self._mutex.acquire(blocking=False):
            return False
        try:
            if self.path is not None:
                fcntl.flock(self._file(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._mutex.release()
            return False
        except BaseException:
            self._mutex.release()
            raise
        self._owner, self._depth = owner, 1
        return True

    def wait_free(self) -> None:
        """Block (without the GIL) until the lock is free, and leave it free.

        For the loop gate's helper thread: the event loop then takes the lock itself with
        :meth:`try_acquire_for`, so the lock is never held while the loop is busy elsewhere.
        """
        self.acquire_for(0)
        self.release()

    def release(self) -> None:
        """Leave the lock once; the last exit frees it for the next thread or process."""
        self._depth -= 1
        if self._depth:
            return
        self._owner = None
        try:
            if self.path is not None:
                fcntl.flock(self._file(), fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def close(self) -> None:
        if self._fd is not None and self._fd_pid == os.getpid():
            os.close(self._fd)
        self._fd = None


def lock_path(database: str | None) -> str | None:
    """The lock file for a SQLite database file; None for an in-memory database."""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return f"{database}-writelock"
