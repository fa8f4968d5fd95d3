"""The shared base of the store: one engine, the dialect, and the clock.

The store is a set of named operations grouped by concern, each group a mixin over this base:
``messages.MessageOps`` (the accept path and message queries) and ``config_ops.ConfigOps``
(operator configuration and the snapshot the API reads). ``store.Store`` combines them. Only the
storage layer writes SQL or maps rows.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine


class StoreBase:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: "sqlite" or "postgresql": operations pick the fastest form per engine.
        self.dialect = engine.dialect.name

    @staticmethod
    def now_ms() -> int:
        return time.time_ns() // 1_000_000

    def close(self) -> None:
        self.engine.dispose()
