"""SQLite writers of several processes queue on one lock (cloudsms.storage.write_lock).

Real processes (``python -c``) and real SQLite files: a writer in another process waits for the
holder and goes on the moment it lets go, a killed holder frees the lock, and two processes
writing through ``Store`` at once both finish without "database is locked".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from cloudsms.storage.store import Store
from cloudsms.storage.write_lock import SqliteWriteLock, lock_path

HOLDER = textwrap.dedent(
    """
    import sys, time
    from cloudsms.storage.write_lock import SqliteWriteLock
    lock = SqliteWriteLock(sys.argv[1])
    with lock:
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    print("released", time.time(), flush=True)
    """
)


def start_holder(path: str, hold_s: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, path, str(hold_s)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_writer_of_another_process_waits_for_the_holder(tmp_path: Path) -> None:
    path = str(tmp_path / "db-writelock")
    holder = start_holder(path, 0.6)
    try:
        lock = SqliteWriteLock(path)
        with lock:
            got = time.time()
        assert holder.stdout is not None
        released = float(holder.stdout.readline().split()[1])
        assert holder.wait(10) == 0
        assert got >= released  # never inside the holder's section
        assert got - released < 0.1  # woken at once, not at the next poll
        lock.close()
    finally:
        holder.kill()


def test_a_killed_holder_frees_the_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "db-writelock")
    holder = start_holder(path, 60)
    waited: list[float] = []
    lock = SqliteWriteLock(path)

    def take() -> None:
        started = time.monotonic()
        with lock:
            waited.append(time.monotonic() - started)

    taker = threading.Thread(target=take)
    taker.start()
    time.sleep(0.3)
    assert not waited  # still held by the other process
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    taker.join(10)
    assert waited and 0.3 <= waited[0] < 5
    lock.close()


def test_reentrant_in_a_thread_exclusive_between_threads(tmp_path: Path) -> None:
    lock = SqliteWriteLock(str(tmp_path / "db-writelock"))
    order: list[str] = []

    def other_thread() -> None:
        with lock:
            order.append("other")

    with lock:
        with lock:  # re-entered (an operation calling another)
            other = threading.Thread(target=other_thread)
            other.start()
            time.sleep(0.2)
            order.append("first")
        time.sleep(0.1)
        order.append("still first")  # the outer section still holds it
    other.join(5)
    assert order == ["first", "still first", "other"]
    lock.close()


def test_in_memory_databases_have_no_lock_file() -> None:
    assert lock_path(None) is None
    assert lock_path(":memory:") is None
    assert lock_path("/var/lib/cloudsms/cloudsms.db") == "/var/lib/cloudsms/cloudsms.db-writelock"


WRITER = textwrap.dedent(
    """
    import sys
    from sqlalchemy import event
    from cloudsms.services.operator import Operator
    from cloudsms.storage.store import Store
    store = Store.open(sys.argv[1], migrate=False)
    # SQLite's own busy handler gets 1 ms: only the write lock can keep the writers apart.
    event.listen(store.engine, "connect", lambda c, r: c.execute("PRAGMA busy_timeout=1"))
    op = Operator(store, actor="test")
    for i in range(int(sys.argv[3])):
        op.create_price_list(f"{sys.argv[2]}-{i}", "HKD")
    store.close()
    print("done", flush=True)
    """
)


def test_two_processes_write_at_once_without_locked_errors(tmp_path: Path) -> None:
    """Two processes changing the configuration at once, each with a 1 ms busy timeout: without
    the lock they would fail with "database is locked"; with it both finish."""
    url = f"sqlite:///{tmp_path / 'cloudsms.db'}"
    Store.open(url).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, name, "60"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        assert out.strip() == "done"
    store = Store.open(url)
    try:
        names = {p.name for p in store.list_price_lists()}
    finally:
        store.close()
    assert {f"{w}-{i}" for w in "ab" for i in range(60)} <= names
