"""Memory growth by allocation site in `cloudsms serve` processes (`bench/soak.py --tracemalloc`).

Imported by every Python process started with this directory on ``PYTHONPATH``; it does
nothing unless ``CLOUDSMS_BENCH_TRACEMALLOC_DIR`` is set and the process is a ``serve`` one
(the API process and its worker child). Then it traces allocations (``tracemalloc``, 1 frame),
takes a baseline snapshot ``CLOUDSMS_BENCH_TRACEMALLOC_WARMUP`` seconds in, and every
``CLOUDSMS_BENCH_TRACEMALLOC_EVERY`` seconds after it appends to
``<dir>/tracemalloc-<pid>.txt`` the traced total and the allocation sites that grew most since
the baseline. Tracing slows the process (every allocation is recorded): soak at a lower rate.

With ``CLOUDSMS_BENCH_MEMORY_DIR`` instead (``bench/soak.py --memory DIR``), nothing is traced:
every ``CLOUDSMS_BENCH_TRACEMALLOC_EVERY`` seconds ``<dir>/memory-<pid>.txt`` gets one line of
where the process's resident memory is — anonymous and file-backed RSS, the bytes Python's
allocator holds (``sys.getallocatedblocks`` and the object count), SQLite's own allocations
(``sqlite3_memory_used``: page caches and prepared statements of every connection, which
tracemalloc does not see) and glibc's arenas (``malloc_info``: how many, in use and free).
Cheap enough to run at the soak's full rate, so a slow climb of RSS can be told apart: Python
objects, SQLite, or free memory the allocator keeps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys
import threading
import time
import tracemalloc

_DIR = os.environ.get("CLOUDSMS_BENCH_TRACEMALLOC_DIR")
_MEMORY_DIR = os.environ.get("CLOUDSMS_BENCH_MEMORY_DIR")


def _malloc_totals(libc: ctypes.CDLL) -> dict[str, int]:
    """glibc's ``malloc_info`` over every arena (``mallinfo2`` sees the main arena only, and
    each thread that allocates may get an arena of its own): the arenas' count, the bytes they
    hold from the system, what is free in them, and the chunks malloc mapped on their own."""
    buf, size = ctypes.c_char_p(), ctypes.c_size_t()
    libc.open_memstream.restype = ctypes.c_void_p
    stream = libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    xml = ctypes.string_at(buf, size.value).decode()
    libc.free(buf)
    totals = xml[xml.rindex("</heap>") :] if "</heap>" in xml else xml
    found = {"arenas": xml.count("<heap nr=")}
    for kind, name in (
        ("total", "fast"), ("total", "rest"), ("total", "mmap"), ("system", "current"),
    ):  # fmt: skip
        tag = f'<{kind} type="{name}"'
        at = totals.find(tag)
        value = totals[totals.index('size="', at) + 6 :].split('"', 1)[0] if at >= 0 else "0"
        found[name] = int(value)
    return found


def _status_kb(fields: tuple[str, ...]) -> dict[str, int]:
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in fields:
                found[name] = int(value.split()[0])
    return found


def _memory(path: str, every_s: float) -> None:
    import sqlite3  # noqa: F401  (loads the libsqlite3 the platform uses)

    sqlite = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    sqlite.sqlite3_memory_highwater.restype = ctypes.c_int64
    libc = ctypes.CDLL("libc.so.6")
    started = time.monotonic()
    with open(path, "a") as out:
        print(f"pid {os.getpid()} {' '.join(sys.argv)}", file=out)
        print(
            "seconds  rss_anon_mb  rss_file_mb  py_blocks  py_objects  sqlite_mb"
            "  sqlite_peak_mb  arenas  malloc_used_mb  malloc_free_mb  mmapped_mb",
            file=out,
            flush=True,
        )
    while True:
        status = _status_kb(("RssAnon", "RssFile"))
        heap = _malloc_totals(libc)
        free = heap["fast"] + heap["rest"]
        line = (
            f"{time.monotonic() - started:7.0f}  {status.get('RssAnon', 0) / 1024:11.1f}"
            f"  {status.get('RssFile', 0) / 1024:11.1f}  {sys.getallocatedblocks():9,}"
            f"  {len(gc.get_objects()):10,}  {sqlite.sqlite3_memory_used() / 1e6:9.1f}"
            f"  {sqlite.sqlite3_memory_highwater(0) / 1e6:14.1f}"
            f"  {heap['arenas']:6}  {(heap['current'] - free) / 1e6:14.1f}"
            f"  {free / 1e6:14.1f}  {heap['mmap'] / 1e6:10.1f}"
        )
        with open(path, "a") as out:
            print(line, file=out, flush=True)
        time.sleep(every_s)


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


if _MEMORY_DIR and "serve" in sys.argv:
    threading.Thread(
        target=_memory,
        args=(
            os.path.join(_MEMORY_DIR, f"memory-{os.getpid()}.txt"),
            float(os.environ.get("CLOUDSMS_BENCH_TRACEMALLOC_EVERY", "60")),
        ),
        name="bench-memory",
        daemon=True,
    ).start()
elif _DIR and "serve" in sys.argv:
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
