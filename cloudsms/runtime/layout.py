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

Messages are claimed for the worker as they are accepted (issue 14, one row write less per
message): the worker tells the API process over a pipe its worker id and how many messages it
has room for (free window slots, while it has no backlog: older messages are never
overtaken); the API process's group commit writes that many of the messages it accepts, due
now, QUEUED under the worker's claim (``LocalClaim``, as for a dispatcher in its own process)
and sends the messages themselves down the wake-up pipe, one JSON line per batch with the
claimer's id, so the worker submits them without reading them back from the store (a SELECT and
a thread hand-off per batch, ~8 % of the worker's time under load, measured with py-spy). The
rest are written ACCEPTED and claimed from the store as before. A claim made so is an ordinary
claim: if the worker dies, the messages are recovered once its lease runs out; a line a new
worker finds in the pipe names an earlier worker's id and is ignored.
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
from collections.abc import Mapping
from dataclasses import fields
from operator import attrgetter
from typing import Protocol

import orjson

from cloudsms.config import Settings
from cloudsms.domain.pipeline import LocalClaim, OutboundMessage
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
#: The environment variable naming the supervised worker's end of the room pipe (to the API).
ROOM_ENV = "CLOUDSMS_ROOM_FD"
#: How often the worker tells the API process its room, when it changed (seconds).
ROOM_REPORT_S = 0.01
#: A line of messages claimed for the worker starts with this byte (wake-ups are NUL bytes);
#: the rest is JSON, ``[claimer, [message, ...]]`` (orjson escapes every control character, so
#: a line holds no newline and no NUL).
CLAIMED = b"C"
#: A claimed message on the pipe: its fields in ``OutboundMessage``'s order, as a JSON array
#: (names not repeated per message; built and read back in C, positionally).
_message_fields = attrgetter(*(f.name for f in fields(OutboundMessage)))
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
        #: The worker's reports of its room come back on a pipe of their own.
        self._room_read, self._room_write = os.pipe()
        os.set_blocking(self._room_read, False)
        self.env[ROOM_ENV] = str(self._room_write)
        self._room_partial = b""
        #: What the worker last reported: its worker id, its room, the messages it had received.
        self._claimer: int | None = None
        #: The claimer the last ``local_claim`` named: what the following ``take_claimed`` holds.
        self._claimed_for: int | None = None
        self._room = 0
        self._received = 0
        #: Messages sent to the worker so far (``_room`` minus those in flight is the credit).
        self._sent = 0
        self._out = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: How many times the child was started (1 after a start without failures).
        self.starts = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._room_read, self._room_readable)
        self._task = asyncio.create_task(self._supervise(), name="worker-process")

    # -- claims for the worker (the writer's LocalIntake) ------------------------------------

    def local_claim(self) -> LocalClaim | None:
        """What the API's group commit may claim for the worker in its next transaction."""
        proc = self.process
        if self._claimer is None or proc is None or proc.returncode is not None:
            return None
        credit = self._room - (self._sent - self._received)
        if credit <= 0:
            return None
        self._claimed_for = self._claimer
        return LocalClaim(self._claimer, credit)

    def take_claimed(self, messages: list[OutboundMessage]) -> None:
        """Messages the group commit claimed for the worker: they go down the pipe, whole."""
        self._sent += len(messages)
        rows = [_message_fields(m) for m in messages]
        line = CLAIMED + orjson.dumps([self._claimed_for, rows]) + b"\n"
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._send, line)

    def _send(self, data: bytes) -> None:
        pending = not self._out
        self._out += data
        if pending:
            self._flush()

    def _flush(self) -> None:
        """Write what waits for the pipe; what does not fit waits for it to drain."""
        try:
            written = os.write(self._wake_write, self._out) if self._out else 0
        except BlockingIOError:
            written = 0
        except (BrokenPipeError, OSError):
            self._out.clear()  # no worker: its claims are recovered when its lease runs out
            return
        del self._out[:written]
        if self._loop is None:
            return
        if self._out:
            self._loop.add_writer(self._wake_write, self._flush)
        else:
            self._loop.remove_writer(self._wake_write)

    def _room_readable(self) -> None:
        try:
            data = os.read(self._room_read, 4096)
        except BlockingIOError:
            return
        lines = (self._room_partial + data).split(b"\n")
        self._room_partial = lines.pop()
        for line in reversed(lines):
            fields = line.split()
            if len(fields) == 3 and all(f.isdigit() for f in fields):
                claimer, room, received = (int(f) for f in fields)
                if claimer and claimer != self._claimer:  # a new worker: nothing in flight
                    self._claimer, self._sent = claimer, received
                self._room, self._received = room, received
                return

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
        if self._loop is not None:
            self._loop.remove_reader(self._room_read)
            self._loop.remove_writer(self._wake_write)
            self._loop = None
        for fd in (self._wake_read, self._wake_write, self._room_read, self._room_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def wake(self) -> None:
        """A packet left messages in the store for a claim: wake the worker's dispatcher to
        claim them (one byte per loop iteration; messages claimed for it need no wake-up)."""
        if not self._wake_due:
            self._wake_due = True
            asyncio.get_running_loop().call_soon(self._send_wake)

    def _send_wake(self) -> None:
        self._wake_due = False
        self._send(b"\0")  # in order behind any claimed messages still waiting for the pipe

    async def _supervise(self) -> None:
        delay = 1.0
        while not self._stopping:
            began = time.monotonic()
            self._claimer = None  # until the new worker reports
            self.process = await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, pass_fds=(self._wake_read, self._room_write)
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


class ClaimIntake(Protocol):
    """The worker's dispatcher, as the pipes from and to the API process see it."""

    def wake(self) -> None: ...
    def local_claim(self) -> LocalClaim | None: ...
    def take_remote(self, claimer: int, messages: list[OutboundMessage]) -> None: ...
    @property
    def remote_received(self) -> int: ...


class WakeListener:
    """In a supervised worker: the pipes to and from the API process (see the module docstring).

    Reads wake-ups (NUL bytes) and lines of messages claimed for us; reports our room.
    """

    def __init__(self, fd: int, intake: ClaimIntake, room_fd: int | None = None) -> None:
        self.fd = fd
        self.room_fd = room_fd
        self._intake = intake
        self._partial = b""
        self._reported: bytes | None = None
        self._reporter: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        os.set_blocking(self.fd, False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self._readable)
        if self.room_fd is not None:
            os.set_blocking(self.room_fd, False)
            self._reporter = asyncio.create_task(self._report_room(), name="room-reports")

    async def stop(self) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reporter
            self._reporter = None
        if self.room_fd is not None:  # the API process claims nothing more for us
            with contextlib.suppress(OSError):
                os.write(self.room_fd, b"0 0 0\n")
        if self._loop is not None:
            self._loop.remove_reader(self.fd)
            self._loop = None

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        if not data and self._loop is not None:  # the API process is gone
            self._loop.remove_reader(self.fd)
            self._loop = None
            return
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        if self._partial and not self._partial.startswith(CLAIMED):
            self._partial = self._partial.lstrip(b"\0")
        for line in lines:
            line = line.lstrip(b"\0")
            if line.startswith(CLAIMED) and len(line) > 1:
                try:
                    claimer, rows = orjson.loads(line[1:])
                    messages = [OutboundMessage(*row) for row in rows]
                except (orjson.JSONDecodeError, TypeError, ValueError):
                    # Never written by our API process; what it meant is recovered with its claim.
                    log.error("unreadable line of claimed messages on the wake-up pipe")
                    continue
                self._intake.take_remote(claimer, messages)
        if b"\0" in data:  # a wake-up: the API process left messages in the store to claim
            self._intake.wake()

    async def _report_room(self) -> None:
        """Tell the API process our room whenever it changed (every ``ROOM_REPORT_S``)."""
        assert self.room_fd is not None
        while True:
            claim = self._intake.local_claim()
            received = self._intake.remote_received
            line = (
                f"{claim.claimer} {claim.limit} {received}\n" if claim is not None else
                f"0 0 {received}\n"
            ).encode()  # fmt: skip
            if line != self._reported:
                with contextlib.suppress(BlockingIOError):
                    os.write(self.room_fd, line)
                    self._reported = line
            await asyncio.sleep(ROOM_REPORT_S)


def wake_listener(
    intake: ClaimIntake | None, environ: Mapping[str, str] | None = None
) -> WakeListener | None:
    """The pipes of a supervised worker (None elsewhere, or without a dispatcher)."""
    env = os.environ if environ is None else environ
    fd, room = env.get(WAKE_ENV, ""), env.get(ROOM_ENV, "")
    if intake is None or not fd.isdigit():
        return None
    return WakeListener(int(fd), intake, int(room) if room.isdigit() else None)
