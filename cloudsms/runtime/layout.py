"""How many processes ``cloudsms serve`` runs: one, or an API process and its worker process.

Why two by default: one Python process runs every part of the pipeline under one GIL and tops
out at about one core; the API (HTTP, validation, group commit) and the worker (SMPP, receipts,
report pushes) are two halves of similar weight, so on a machine with two cores or more two
processes carry about 1.5x the messages per second of one on a SQLite file and 1.3x on
PostgreSQL, at less CPU per message (bench/README.md "Layouts", same runs as Kannel). On one
core the second process only adds switching, so ``auto`` runs one there.

The two-process layout: the process the operator starts serves the UIP endpoint, the admin
listener and (when set) the built-in simulator (``role api``), and runs the worker (``role
worker``) as a child it supervises — started once the API is up, started again (after a pause
that grows while it keeps failing) if it exits on its own, stopped (SIGTERM, then SIGKILL after
``stop_timeout_s``) when the API process stops. The child asks the kernel for SIGTERM when its
parent dies (Linux ``PR_SET_PDEATHSIG``), so ``kill -9`` of the API process does not leave an
orphan worker behind; both halves recover what was in flight at the next start, as one process
does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping

from cloudsms.config import Settings
from cloudsms.exceptions import ConfigError
from cloudsms.runtime.listening import stop_signal_received
from cloudsms.storage.engine import is_sqlite

log = logging.getLogger(__name__)

#: What ``processes`` may be set to.
PROCESS_CHOICES = ("auto", "1", "2")
#: The environment variable telling a supervised worker which process is its parent.
PARENT_ENV = "CLOUDSMS_PARENT_PID"
#: The environment variable naming the supervised worker's end of the wake-up pipe.
WAKE_ENV = "CLOUDSMS_WAKE_FD"
_PR_SET_PDEATHSIG = 1


def available_cores() -> int:
    """CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def process_count(settings: Settings, *, cores: int | None = None) -> int:
    """1 or 2: how many processes ``serve`` runs for these settings (see the module docstring).

    ``auto`` is 2 for role ``all`` with at least two cores (on SQLite, on a file), 1 otherwise.
    """
    choice = str(settings.processes).strip().lower()
    if choice not in PROCESS_CHOICES:
        raise ConfigError(
            f"processes must be one of {', '.join(PROCESS_CHOICES)}, not {settings.processes!r}"
        )
    if choice == "1":
        return 1
    on_file = is_sqlite(settings.database_url) and ":memory:" not in settings.database_url
    if choice == "2":
        if settings.role != "all":
            raise ConfigError(
                f"processes 2 runs role all as an api and a worker process; role is"
                f" {settings.role!r} (set processes to 1 or auto)"
            )
        if is_sqlite(settings.database_url) and not on_file:
            raise ConfigError("processes 2 needs a database both processes can open, not :memory:")
        return 2
    if settings.role != "all" or (is_sqlite(settings.database_url) and not on_file):
        return 1
    return 2 if (cores if cores is not None else available_cores()) >= 2 else 1


def worker_environment(
    settings: Settings, config_file: str | None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of the supervised worker: the parent's settings, the worker's role.

    The worker reads the same settings file and environment; what differs is set explicitly.
    Its health listener takes a free port on 127.0.0.1 (the API process's port is taken).
    """
    env = dict(os.environ if base is None else base)
    env.update(
        CLOUDSMS_DATABASE_URL=settings.database_url,
        CLOUDSMS_ROLE="worker",
        CLOUDSMS_PROCESSES="1",
        CLOUDSMS_ADMIN_ENABLED="false",
        CLOUDSMS_SIMULATOR_PORT="0",
        CLOUDSMS_HOST="127.0.0.1",
        CLOUDSMS_PORT="0",
    )
    env[PARENT_ENV] = str(os.getpid())
    if config_file:
        env["CLOUDSMS_CONFIG"] = str(config_file)
    return env


class WorkerProcess:
    """The supervised worker child of the two-process layout (a platform component)."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        argv: list[str] | None = None,
        stop_timeout_s: float = 30.0,
        max_restart_delay_s: float = 30.0,
    ) -> None:
        self.argv = argv or [sys.executable, "-m", "cloudsms", "serve", "--role", "worker"]
        self.env = dict(env)
        self.stop_timeout_s = stop_timeout_s
        self.max_restart_delay_s = max_restart_delay_s
        self.process: asyncio.subprocess.Process | None = None
        #: Wake-ups for the worker's dispatcher: SQLite has no notifications, and a worker that
        #: only polled would submit a message accepted while it was idle up to 0.25 s later.
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self.env[WAKE_ENV] = str(self._wake_read)
        self._wake_due = False
        #: How many times the child was started (1 after a start without failures).
        self.starts = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="worker-process")

    async def stop(self) -> None:
        self._stopping = True
        proc = self.process
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.stop_timeout_s)
            except TimeoutError:
                log.error("the worker process did not stop in %.0f s: killed", self.stop_timeout_s)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def wake(self) -> None:
        """A packet was accepted: wake the worker's dispatcher (one byte per loop iteration)."""
        if not self._wake_due:
            self._wake_due = True
            asyncio.get_running_loop().call_soon(self._send_wake)

    def _send_wake(self) -> None:
        self._wake_due = False
        # A full pipe already holds a wake-up the worker has not read yet.
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(self._wake_write, b"\0")

    async def _supervise(self) -> None:
        delay = 1.0
        while not self._stopping:
            began = time.monotonic()
            self.process = await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, pass_fds=(self._wake_read,)
            )
            self.starts += 1
            log.info("worker process started (pid %d)", self.process.pid)
            code = await self.process.wait()
            if self._stopping or stop_signal_received():
                return  # a Ctrl-C or a group's SIGTERM reaches the child too: not a failure
            if time.monotonic() - began > 60:
                delay = 1.0  # it ran a while: a fresh failure, not a crash loop
            log.error(
                "the worker process (pid %d) exited with status %s; starting it again in %.0f s",
                self.process.pid, code, delay,
            )  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_restart_delay_s)


def follow_parent(environ: Mapping[str, str] | None = None) -> None:
    """In a supervised worker: stop (SIGTERM) when the API process that started it dies."""
    environ = os.environ if environ is None else environ
    parent = environ.get(PARENT_ENV, "")
    if not parent.isdigit():
        return
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:  # pragma: no cover
            log.warning("could not ask to stop with the API process (prctl failed)")
    if os.getppid() != int(parent):  # it died before we asked
        raise SystemExit("the API process that started this worker is gone")


class WakeListener:
    """In a supervised worker: the wake-up pipe from the API process wakes our dispatcher."""

    def __init__(self, fd: int, wake: Callable[[], None]) -> None:
        self.fd = fd
        self._wake = wake
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        os.set_blocking(self.fd, False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self._readable)

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.fd)
            self._loop = None

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        if not data and self._loop is not None:  # the API process is gone
            self._loop.remove_reader(self.fd)
            self._loop = None
            return
        self._wake()


def wake_listener(
    wake: Callable[[], None] | None, environ: Mapping[str, str] | None = None
) -> WakeListener | None:
    """The wake-up listener of a supervised worker (None elsewhere, or without a dispatcher)."""
    fd = (os.environ if environ is None else environ).get(WAKE_ENV, "")
    if wake is None or not fd.isdigit():
        return None
    return WakeListener(int(fd), wake)
