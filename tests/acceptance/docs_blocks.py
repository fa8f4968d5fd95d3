"""The shell blocks of README.md and docs/*.md, and a scratch terminal to run them in.

Used by ``test_docs_commands.py``. A block is a fenced code block whose info string is ``sh``,
``bash``, ``shell`` or ``console``. A block a reader is not meant to run as written (it needs a
real carrier, or it is a synopsis) says why in an HTML comment on the line before its fence::

    <!-- not run: needs a real carrier's SMSC and account -->
    ```sh
    cloudsms connectors set carrier-1 --host smsc.carrier.example …
    ```

A block that needs what the prose says the reader already has (a customer) names the commands
that make it in a ``<!-- setup: COMMANDS -->`` comment there; they run first. Every other
block runs, in document order, one terminal per file (see ``docs_harness.sh``),
against a scratch store in a temporary directory. What a reader replaces with their own is
replaced with a scratch equivalent (``PLACEHOLDERS``): the PostgreSQL URL
``postgresql://…@db.internal/…`` by a fresh database on the test server (SQLite when
``CLOUDSMS_TEST_PG_URL=""``), ``/var/lib/cloudsms`` by a directory in the scratch one, the host
name ``sms.example.com`` by ``localhost`` (the scratch ``cert.pem`` is issued to it, by the CA in
``ca.pem``; ``client.pem``/``client.key`` are a client certificate of the same CA), and the
platform's ports (1815, 1816, 1825, 1826, 2775, 8080) by free ones.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).with_name("docs_harness.sh")
SHELLS = frozenset({"sh", "bash", "shell", "console"})
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>.*?)\s*-->$")
SETUP = re.compile(r"^<!--\s*setup:\s*(?P<commands>.*?)\s*-->$")
#: First words of a command line: an unlabelled block starting so should be labelled ``sh``.
COMMAND_WORDS = ("cloudsms ", "curl ", "make ", "export ", "sudo ", "pip ", "python")
PORTS = (1815, 1816, 1825, 1826, 2775, 8080)
PG_PLACEHOLDER = re.compile(r"postgresql://[^\s'\"]*@db\.internal/[\w-]+")
BLOCK_TIMEOUT_S = 240


def doc_files() -> list[Path]:
    """README.md and every docs/*.md, in a stable order."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    """One shell block: where it is, its text, and why it is not run (None: it runs)."""

    path: Path
    #: Line number of the opening fence (1-based).
    line: int
    text: str
    not_run: str | None
    #: Commands run first, for state the prose says the reader already has (a customer).
    setup: str = ""
    #: The fence's info string ("sh", "" …).
    info: str = "sh"

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    """The fenced code blocks of one Markdown file (all of them: ``all_blocks`` keeps the shell
    ones)."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        fence = re.match(r"^(\s*)(`{3,}|~{3,})\s*([\w-]*)", lines[index])
        if not fence:
            index += 1
            continue
        start, marker, info = index, fence[2], fence[3].lower()
        index += 1
        body: list[str] = []
        while index < len(lines) and not lines[index].strip().startswith(marker):
            body.append(lines[index])
            index += 1
        index += 1
        comments = _comments_above(lines, start)
        not_run = next((m["reason"] for c in comments if (m := NOT_RUN.match(c))), None)
        setup = "\n".join(m["commands"] for c in comments if (m := SETUP.match(c)))
        text = "\n".join(body) + "\n"
        found.append(Block(path, start + 1, text, not_run, setup, info))
    return found


def _comments_above(lines: list[str], fence: int) -> list[str]:
    """The HTML comment lines right above a fence (blank lines between them allowed)."""
    found = []
    for text in reversed(lines[:fence]):
        stripped = text.strip()
        if not stripped:
            continue
        if not (stripped.startswith("<!--") and stripped.endswith("-->")):
            break
        found.append(stripped)
    return found


def all_blocks() -> list[Block]:
    """Every shell block of the docs."""
    return [b for path in doc_files() for b in blocks_of(path) if b.info in SHELLS]


def unlabelled_commands() -> list[Block]:
    """Blocks without an info string that start like a shell command (they would not run)."""
    return [
        b
        for path in doc_files()
        for b in blocks_of(path)
        if not b.info and b.text.lstrip().startswith(COMMAND_WORDS)
    ]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_pki(directory: Path) -> None:
    """ca.pem; cert.pem + key.pem for localhost and 127.0.0.1; client.pem + client.key."""
    import trustme

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    server = ca.issue_cert("localhost", "127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(directory / "cert.pem"))
    server.private_key_pem.write_to_path(str(directory / "key.pem"))
    client = ca.issue_cert("customer@example.com")
    client.cert_chain_pems[0].write_to_path(str(directory / "client.pem"))
    client.private_key_pem.write_to_path(str(directory / "client.key"))


class BlockFailed(AssertionError):
    pass


@dataclass
class Terminal:
    """One file's terminal: scratch directory, ports, variables kept between blocks, servers."""

    path: Path
    scratch: Path
    pg_admin_url: str
    ports: dict[int, int] = field(default_factory=dict)
    done: int = 0
    failed: str | None = None
    _pg_database: str | None = None
    _store_url: str | None = None

    def __post_init__(self) -> None:
        self.ports = {port: free_port() for port in PORTS}
        (self.scratch / "var/lib/cloudsms").mkdir(parents=True, exist_ok=True)
        write_pki(self.scratch)

    # -- placeholders ---------------------------------------------------------------------------

    def store_url(self) -> str:
        """The scratch stand-in for the docs' PostgreSQL URL (created on first use)."""
        if self._store_url is None:
            if not self.pg_admin_url:
                self._store_url = f"sqlite:///{self.scratch / 'postgres-standin.db'}"
            else:
                import psycopg

                name = f"cloudsms_docs_{secrets.token_hex(6)}"
                with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                self._pg_database = name
                self._store_url = f"{self.pg_admin_url.rpartition('/')[0]}/{name}"
        return self._store_url

    def substitute(self, text: str) -> str:
        text = PG_PLACEHOLDER.sub(lambda _: self.store_url(), text)
        text = text.replace("/var/lib/cloudsms", str(self.scratch / "var/lib/cloudsms"))
        text = text.replace("sms.example.com", "localhost")
        return re.sub(
            r"(?<![\d.])(" + "|".join(map(str, PORTS)) + r")(?!\d)",
            lambda m: str(self.ports[int(m[1])]),
            text,
        )

    # -- running --------------------------------------------------------------------------------

    def env(self, block: Block, number: int) -> dict[str, str]:
        bin_dir = str(Path(sys.executable).parent)
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("CLOUDSMS_")},
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "CLOUDSMS_PORT": str(self.ports[1815]),
            "CLOUDSMS_ADMIN_PORT": str(self.ports[1816]),
            "DOCS_SIM_PORT": str(self.ports[2775]),
            "DOCS_SCRATCH": str(self.scratch),
            "DOCS_REPO": str(REPO),
            "DOCS_STATE": str(self.scratch / "variables.sh"),
            "DOCS_BLOCK": str(number),
            # For the ERR trap's "docs/x.md:LINE: exit N from: COMMAND" (3 lines of header).
            "DOCS_WHERE": f"{block.path.relative_to(REPO)}:{block.line - 3}",
        }

    def run(self, block: Block, number: int) -> None:
        """Run one block; raise BlockFailed naming the file, the block and the failing line."""
        header = [
            "set -Eeuo pipefail",
            f"source {HARNESS}",
            "trap '__docs_err $? \"$BASH_COMMAND\"' ERR",
        ]
        if block.setup:  # on the header's last line, so the block's line numbers stay
            header[-1] += f"; {block.setup}"
        script = "\n".join(header) + "\n" + self.substitute(block.text)
        (self.scratch / f"block-{number}.sh").write_text(script)
        try:
            done = subprocess.run(
                ["bash", str(self.scratch / f"block-{number}.sh")],
                cwd=self.scratch,
                env=self.env(block, number),
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            raise BlockFailed(
                f"{block.where}: the block did not finish in {BLOCK_TIMEOUT_S} s"
                f" (a command that never ends that docs_harness.sh does not know?)\n{block.text}"
                f"--- stdout ---\n{exc.stdout!s}\n--- stderr ---\n{exc.stderr!s}"
            ) from exc
        if done.returncode != 0:
            failing = re.findall(r"^docs-test: [^:]+:(\d+): ", done.stderr, re.MULTILINE)
            failing += [  # errors bash reports itself ("unbound variable"), by script line
                str(int(n) - 3 + block.line)
                for n in re.findall(r"block-\d+\.sh: line (\d+): ", done.stderr)
            ]
            lines = block.path.read_text(encoding="utf-8").splitlines()
            at = (
                f" at line {failing[-1]}: {lines[int(failing[-1]) - 1].strip()}"
                if failing and 0 < int(failing[-1]) <= len(lines)
                else ""
            )
            raise BlockFailed(
                f"{block.where}: the shell block starting on this line failed{at} (exit"
                f" {done.returncode}). Fix the block, or, if a reader is not meant to run it as"
                f" written, put <!-- not run: REASON --> on the line before its fence.\n"
                f"--- block ---\n{block.text}--- stdout ---\n{done.stdout}"
                f"--- stderr ---\n{done.stderr}"
            )
        self.check_servers(block)

    def servers(self) -> list[tuple[int, int, Path, str]]:
        listing = self.scratch / "background.tsv"
        if not listing.exists():
            return []
        rows = []
        for line in listing.read_text().splitlines():
            block, pid, log, command = line.split("\t", 3)
            rows.append((int(block), int(pid), Path(log), command))
        return rows

    def check_servers(self, block: Block) -> None:
        """Every server still meant to run (not stopped for a later layout) is alive."""
        rows = self.servers()
        latest = max((row[0] for row in rows), default=0)
        for number, pid, log, command in rows:
            if number == latest and not _alive(pid):
                raise BlockFailed(
                    f"{block.where}: '{command}' (started by block {number}) stopped:\n"
                    + log.read_text()
                )

    def close(self) -> None:
        """Stop every server (SIGTERM to its session, then SIGKILL) and drop the database."""
        rows = self.servers()
        for _, pid, _, _ in rows:
            _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for _, pid, _, _ in rows:
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            _signal_group(pid, signal.SIGKILL)
        if self._pg_database is not None:
            import psycopg

            with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self._pg_database}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not a live server (the harness's bash has exited; init reaps it later).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
