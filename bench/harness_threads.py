"""Where each cloudsms process spends its CPU under the side-by-side harness, thread by thread.

Runs ``../shared/anchors/bench.py --gateway cloudsms`` once (the harness's load generator, SMSC
simulator and callback sink; ``cloudsms serve`` in its default layout), and while the load runs
samples, for every ``cloudsms serve`` process, each thread's user and system CPU
(``/proc/PID/task/TID/stat``) and the bytes the process wrote (``/proc/PID/io``: ``wchar``,
the socket answers and SQLite's log together). Prints them per message end to end.

Why: ``bench/harness_cpu.py`` gives the CPU of all processes together; this shows which thread
of which process is the first to run out (a process's event loop is one thread, so it
saturates at one core whatever the machine has left), and what the store writes per message.

    ANCHORS_PY=~/.cache/anchors-venv/bin/python .venv/bin/python bench/harness_threads.py \
        [--n 20000] [--window 4] [-- extra bench.py options]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT.parent / "shared" / "anchors" / "bench.py"
#: Clock ticks per second of /proc's CPU times.
TICKS = os.sysconf("SC_CLK_TCK")


def serve_pids() -> list[int]:
    """The ``cloudsms serve`` processes running now (the API process and its worker child)."""
    out = subprocess.run(["pgrep", "-f", "cloudsms serve"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def snapshot(pids: list[int]) -> dict[tuple[int, int], tuple[str, int, int]]:
    """(pid, tid) → (thread name, user ticks, system ticks)."""
    found: dict[tuple[int, int], tuple[str, int, int]] = {}
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                name = (task / "comm").read_text().strip()
                # The name may hold spaces: the fields after its closing parenthesis.
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            found[(pid, int(task.name))] = (name, int(fields[11]), int(fields[12]))
    return found


def written(pids: list[int]) -> dict[int, int]:
    """pid → bytes written so far (``wchar``: files, pipes and sockets)."""
    out: dict[int, int] = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/io").read_text().splitlines():
                if line.startswith("wchar:"):
                    out[pid] = int(line.split()[1])
        except OSError:
            continue
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="sends (single-recipient)")
    parser.add_argument("--window", type=float, default=4.0, help="seconds sampled under load")
    parser.add_argument("extra", nargs="*", help="more options for bench.py (after --)")
    args = parser.parse_args()
    python = os.environ.get("ANCHORS_PY", str(Path.home() / ".cache/anchors-venv/bin/python"))
    out = Path(tempfile.mkdtemp(prefix="harness-threads-"))
    command = [
        python, str(HARNESS), "--gateway", "cloudsms",
        "--cloudsms-bin", str(ROOT / ".venv/bin/cloudsms"), "--n", str(args.n), "--c", "50",
        "--reps", "1", "--quiet-wait", "20", "--out", str(out / "run"), *args.extra,
    ]  # fmt: skip
    with open(out / "run.log", "wb") as log:
        run = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            probe = subprocess.run(
                ["pgrep", "-f", f"loadgen.py.*--n {args.n}"], capture_output=True
            )
            if probe.returncode == 0:
                break
            time.sleep(0.2)
        time.sleep(1.0)  # past the connections' start
        pids = serve_pids()
        before, wrote_before = snapshot(pids), written(pids)
        time.sleep(args.window)
        after, wrote_after = snapshot(pids), written(pids)
        run.wait(timeout=600)
    summary = json.loads((out / "run" / "summary.json").read_text())
    rate = float(summary["e2e_msgs_per_s"] or 0)
    if rate <= 0:
        sys.exit(f"no end-to-end rate in {out}/run/summary.json: see {out}/run.log")
    per_message = 1e6 / (rate * args.window * TICKS)
    print(f"end to end {rate:,.0f} msg/s; {args.window:g} s sampled under load; results in {out}")
    print("| process | thread | user % of a core | system % | CPU µs per message |")
    print("|---|---|---|---|---|")
    total = 0.0
    for key, (name, user, system) in sorted(after.items()):
        if key not in before:
            continue
        du, ds = user - before[key][1], system - before[key][2]
        if du + ds == 0:
            continue
        us = (du + ds) * per_message
        total += us
        share = 100 / (args.window * TICKS)
        print(f"| {key[0]} | {key[1]} {name} | {du * share:.0f} | {ds * share:.0f} | {us:.0f} |")
    print(f"| all | | | | {total:.0f} |")
    for pid in sorted(wrote_after):
        if pid in wrote_before:
            per = (wrote_after[pid] - wrote_before[pid]) / (rate * args.window)
            print(f"process {pid} wrote {per:,.0f} bytes per message (wchar)")


if __name__ == "__main__":
    main()
