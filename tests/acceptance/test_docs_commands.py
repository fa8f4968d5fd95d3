"""Every shell block of README.md and docs/*.md runs as written (issue 12.6).

One test per block, named ``FILE:LINE`` of its opening fence, run in document order; the blocks
of a file share one terminal (variables, scratch directory, running servers), as a reader who
follows the file top to bottom would. A block a reader is not meant to run as written says why
(``<!-- not run: REASON -->`` on the line before its fence) and is listed as skipped with that
reason. How blocks run, and what is replaced by scratch equivalents: ``docs_blocks.py`` and
``docs_harness.sh``. A failure names the file, the block's line, and the line and command that
failed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from docs_blocks import (
    REPO,
    SHELLS,
    Block,
    BlockFailed,
    Terminal,
    all_blocks,
    blocks_of,
    doc_files,
    unlabelled_commands,
)

PG_ADMIN_URL = os.environ.get("CLOUDSMS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BLOCKS = all_blocks()


class Terminals:
    """The terminal of the file being run; opening another file's closes it (its servers)."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.current: Terminal | None = None

    def of(self, path: Path) -> Terminal:
        if self.current is not None and self.current.path != path:
            self.close()
        if self.current is None:
            scratch = self.factory.mktemp(path.stem.replace(".", "-"))
            admin_url = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
            self.current = Terminal(path, scratch, admin_url)
        return self.current

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None


@pytest.fixture(scope="module")
def terminals(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Terminals]:
    opened = Terminals(tmp_path_factory)
    try:
        yield opened
    finally:
        opened.close()


def test_blocks_are_found() -> None:
    """The extraction sees the blocks (an empty list would pass every other test here)."""
    wheres = [block.where for block in BLOCKS]
    assert any(where.startswith("README.md:") for where in wheres), wheres
    assert any(where.startswith("docs/operations.md:") for where in wheres), wheres
    assert all(block.not_run for block in BLOCKS if block.not_run is not None), (
        "a <!-- not run: … --> marker must give its reason"
    )


@pytest.mark.parametrize("block", BLOCKS, ids=[block.where for block in BLOCKS])
def test_shell_block_runs(block: Block, terminals: Terminals) -> None:
    if block.not_run is not None:
        pytest.skip(f"not run: {block.not_run}")
    terminal = terminals.of(block.path)
    runnable = [b for b in blocks_of(block.path) if b.info in SHELLS and b.not_run is None]
    position = runnable.index(block)
    # Run the blocks before this one first when they have not run (a test selected alone).
    for number, earlier in enumerate(runnable[: position + 1], 1):
        if number <= terminal.done:
            continue
        terminal.done = number
        try:
            terminal.run(earlier, number)
            continue
        except BlockFailed as exc:
            message = str(exc)
        if terminal.failed:
            message = f"(note: {terminal.failed} failed before it)\n{message}"
        terminal.failed = terminal.failed or earlier.where
        pytest.fail(message, pytrace=False)


def test_commands_are_in_shell_blocks() -> None:
    """A block of commands without ```sh would silently escape this test: label it."""
    found = [f"{b.where}: {b.text.splitlines()[0]}" for b in unlabelled_commands()]
    assert not found, "label these blocks ```sh (or mark them not run):\n" + "\n".join(found)


def test_every_doc_file_is_in_scope() -> None:
    """README.md and all of docs/*.md, so a new document is checked without a change here."""
    names = {path.relative_to(REPO).as_posix() for path in doc_files()}
    assert "README.md" in names
    assert {p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md")} <= names


#: Words that date a figure by something only its author could place (issue 12.16).
UNPLACEABLE = re.compile(r"\b[Ss]essions? \d|\b[Ss]ession-\d|\bthis session\b|\bthis session's\b")


def test_figures_are_dated_in_words_a_reader_can_place() -> None:
    """Measurements carry a day (and commit), not "session 3" or "this session's machine"."""
    files = [*doc_files(), REPO / "bench" / "README.md"]
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if UNPLACEABLE.search(line)
    ]
    assert not found, "date these figures (day, commit, calibration):\n" + "\n".join(found)
