"""The cyclic garbage collector's settings in a serving process (``cloudsms serve``).

Why: measured under the side-by-side harness (bench/README.md, "The garbage collector"), the
collector took ~8 % of the API process's CPU at saturation, and each full collection ~100 ms
with the event loop stopped — it walks every object the process holds: the modules,
SQLAlchemy's, Starlette's and Typer's structures, the configuration. The pipeline's own objects
(packets, messages, PDUs, reports) are freed by reference counting as soon as they are done;
they rarely form cycles. So a serving process freezes what it holds once it has started
(``gc.freeze``: never traversed again; those objects live as long as the process anyway) and
collects its youngest generation every 20,000 new container objects instead of 700, so the
collector's work follows the garbage that can be cyclic, not the heap.
"""

from __future__ import annotations

import gc

#: New container objects between two collections of the youngest generation (CPython: 700).
YOUNG_THRESHOLD = 20_000
#: Young collections per middle one, middle ones per full one (CPython: 10, 10).
OLDER_THRESHOLDS = (20, 20)


def tune_for_serving() -> None:
    """Freeze what the process holds now and space out collections (see the module docstring).

    Call it once the process has built what lives as long as it does (imports, settings,
    the platform's objects); calling it again freezes what was built since.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
