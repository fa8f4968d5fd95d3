"""Memory growth by allocation site in `cloudsms serve` processes (`bench/soak.py --tracemalloc`).

Imported by every Python process started with this directory on ``PYTHONPATH``; it does
nothing unless ``CLOUDSMS_BENCH_TRACEMALLOC_DIR`` is set and the process is a ``serve`` one
(the API process and its worker child). Then it traces allocations (``tracemalloc``, 1 frame),
takes a baseline snapshot ``CLOUDSMS_BENCH_TRACEMALLOC_WARMUP`` seconds in, and every
``CLOUDSMS_BENCH_TRACEMALLOC_EVERY`` seconds after it appends to
``<dir>/tracemalloc-<pid>.txt`` the traced total and the allocation sites that grew most since
the baseline. Tracing slows the process (every allocation is recorded): soak at a lower rate.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import tracemalloc

_DIR = os.environ.get("CLOUDSMS_BENCH_TRACEMALLOC_DIR")
_TOP = 25


def _watch(path: str, warmup_s: float, every_s: float) -> None:
    started = time.monotonic()
    time.sleep(warmup_s)
    ignore = (
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    )
    base = tracemalloc.take_snapshot().filter_traces(ignore)
    with open(path, "a") as out:
        print(f"pid {os.getpid()} {' '.join(sys.argv)}", file=out)
        print(
            f"baseline at {time.monotonic() - started:.0f} s: traced "
            f"{tracemalloc.get_traced_memory()[0] / 1e6:.1f} MB",
            file=out,
            flush=True,
        )
    while True:
        time.sleep(every_s)
        snap = tracemalloc.take_snapshot().filter_traces(ignore)
        current, peak = tracemalloc.get_traced_memory()
        with open(path, "a") as out:
            print(
                f"\n--- at {time.monotonic() - started:.0f} s: traced {current / 1e6:.1f} MB "
                f"(peak {peak / 1e6:.1f} MB); growth since the baseline by site:",
                file=out,
            )
            for stat in snap.compare_to(base, "lineno")[:_TOP]:
                print(
                    f"  {stat.size_diff / 1e6:+8.2f} MB {stat.count_diff:+9,} blocks  "
                    f"{stat.traceback}",
                    file=out,
                )
            out.flush()


if _DIR and "serve" in sys.argv:
    tracemalloc.start(1)
    threading.Thread(
        target=_watch,
        args=(
            os.path.join(_DIR, f"tracemalloc-{os.getpid()}.txt"),
            float(os.environ.get("CLOUDSMS_BENCH_TRACEMALLOC_WARMUP", "60")),
            float(os.environ.get("CLOUDSMS_BENCH_TRACEMALLOC_EVERY", "60")),
        ),
        name="bench-tracemalloc",
        daemon=True,
    ).start()
