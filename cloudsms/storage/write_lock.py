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

**The flush after the lock** (issue 14): SQLite with ``synchronous=FULL`` flushes the log
(``fdatasync`` of the ``-wal`` file) inside its commit, i.e. with the write lock held. Under the
harness's load that flush took ~0.8 ms of the ~2 ms a transaction held the lock, and with the API
and the worker on one file the lock was busy ~70 % of the time, so each waited for the other's
flushes. A holder that sets :attr:`SqliteWriteLock.flush_after_release` has its durable commits
made without the flush (``synchronous=NORMAL``: the frames are written, not yet flushed) and
calls :meth:`SqliteWriteLock.flush_log` once the lock is released, before it tells anyone that
the write is stored. That ``fdatasync`` of the log file makes every frame written so far durable
— ours and any written after them — so the acknowledged write is exactly as durable as with
``FULL``; the next writer meanwhile appends its own frames. A checkpoint in between is no hole:
SQLite flushes the log before a checkpoint copies frames into the database, and the database
after it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from types import TracebackType

from cloudsms.exceptions import StoreError


class SqliteWriteLock:
    """Re-entrant within a thread; exclusive across the threads and processes using ``path``.

    The event loop's write gate (``cloudsms.storage.gate``) waits for the lock to be free in a
    helper thread (:meth:`wait_free`), so the loop is never blocked in the queue, and then takes
    it on the loop thread without waiting (:meth:`try_acquire_for`).
    """

    def __init__(self, path: str | None, log_path: str | None = None) -> None:
        #: None: a private database (``:memory:``), no other process can see it.
        self.path = path
        #: The database's write-ahead log (``<database>-wal``), flushed by :meth:`flush_log`.
        self.log_path = log_path
        #: Set by the holder for its call: durable commits leave the flush to :meth:`flush_log`
        #: (see the module docstring). Only the thread holding the lock reads or sets it.
        self.flush_after_release = False
        #: A commit made under ``flush_after_release`` that is not flushed yet.
        self.unflushed = False
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

    def take_unflushed(self) -> bool:
        """End the holder's deferred flush: whether a commit made under it awaits a flush."""
        unflushed, self.unflushed, self.flush_after_release = self.unflushed, False, False
        return unflushed

    def flush_log(self) -> None:
        """Make every commit written to the log so far durable (``fdatasync``; no lock needed).

        The file is opened afresh: a log deleted and recreated since (SQLite deletes it when the
        last connection closes, after a checkpoint that flushed the database) must not leave us
        flushing a stale inode. No log file: its frames are in the flushed database already.
        """
        if self.log_path is None:
            return
        try:
            fd = os.open(self.log_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreError(f"could not flush the database log {self.log_path}: {exc}") from exc
        try:
            os.fdatasync(fd)  # without the GIL
        except OSError as exc:
            raise StoreError(f"could not flush the database log {self.log_path}: {exc}") from exc
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._fd is not None and self._fd_pid == os.getpid():
            os.close(self._fd)
        self._fd = None


def log_path(database: str | None) -> str | None:
    """SQLite's write-ahead log for a database file; None for an in-memory database."""
    return None if lock_path(database) is None else f"{database}-wal"


def lock_path(database: str | None) -> str | None:
    """The lock file for a SQLite database file; None for an in-memory database."""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return f"{database}-writelock"
