"""An accepted packet is flushed to disk before its OK leaves (SPEC §3: OK means stored).

The platform answers over a real socket while a listener on its engine looks inside every
transaction just before COMMIT: which rows of ``messages`` it wrote, and the durability setting
in force for that commit (PostgreSQL ``synchronous_commit``, SQLite ``PRAGMA synchronous``). No
client can see the difference between a flushed and an unflushed commit until the power fails,
so the setting is the thing to pin: whatever sets it — ``SET LOCAL`` in the accept path, a
session ``SET``, connection options, ``ALTER DATABASE`` — shows in the value read at commit.
On SQLite a commit made with ``synchronous=NORMAL`` counts only if the platform flushed the log
itself (``SqliteWriteLock.flush_log``, after the write lock is released) after that commit and
before the answer left.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from seed import seed_customer
from sqlalchemy import event

from cloudsms.storage.store import Store
from cloudsms.storage.write_lock import SqliteWriteLock

#: PostgreSQL: the rows of ``messages`` this transaction inserted (xmin is its 32-bit xid).
#: COPY bypasses SQLAlchemy's statement events, so the rows are found in the table itself.
OWN_ROWS = (
    "SELECT sms_uid FROM messages"
    " WHERE xmin::text::bigint = pg_current_xact_id()::text::bigint % 4294967296"
)
#: PostgreSQL: only ``off`` answers a commit before its WAL is flushed on this server.
PG_NOT_DURABLE = {"off"}
#: SQLite in WAL mode: FULL (2) or EXTRA (3) sync the WAL at each commit; NORMAL (1) does not.
SQLITE_DURABLE = {2, 3}
SQLITE_NORMAL = 1


class CommitWatch:
    """Records, for each commit that wrote messages, the SMS_UIDs and the durability setting."""

    def __init__(self, store: Store) -> None:
        self.dialect = store.dialect
        #: (SMS_UIDs written or "?" on SQLite, setting in force at COMMIT)
        self.commits: list[tuple[list[str], Any]] = []
        #: In order: ("commit", index in commits), ("flush", -1) once a log flush returned,
        #: ("answer", -1) once the test got an HTTP answer.
        self.events: list[tuple[str, int]] = []
        lock = store.write_lock
        if isinstance(lock, SqliteWriteLock):
            real_flush = lock.flush_log

            def flush_log() -> None:
                real_flush()
                self.events.append(("flush", -1))

            lock.flush_log = flush_log  # type: ignore[method-assign]
        event.listen(store.engine, "before_cursor_execute", self._statement)
        event.listen(store.engine, "commit", self._commit)
        event.listen(store.engine, "rollback", self._forget)

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO MESSAGES"):
            conn.info["wrote_messages"] = True

    def _forget(self, conn: Any) -> None:
        conn.info.pop("wrote_messages", None)

    def _commit(self, conn: Any) -> None:
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            if self.dialect == "postgresql":
                cursor.execute(OWN_ROWS)
                uids = [row[0] for row in cursor.fetchall()]
                cursor.execute("SHOW synchronous_commit")
                setting = cursor.fetchone()[0]
            else:
                uids = ["?"] if conn.info.pop("wrote_messages", False) else []
                setting = cursor.execute("PRAGMA synchronous").fetchone()[0]
        finally:
            cursor.close()
        if uids:
            self.events.append(("commit", len(self.commits)))
            self.commits.append((uids, setting))

    def durable(self, index: int) -> bool:
        """Commit ``index`` was on disk before the next answer left."""
        setting = self.commits[index][1]
        if self.dialect == "postgresql":
            return setting not in PG_NOT_DURABLE
        if setting in SQLITE_DURABLE:
            return True
        after = self.events[self.events.index(("commit", index)) + 1 :]
        kinds = [kind for kind, _ in after]
        flushed = "flush" in kinds and (
            "answer" not in kinds or kinds.index("flush") < kinds.index("answer")
        )
        return setting == SQLITE_NORMAL and flushed


def test_accepted_packets_are_committed_durably(
    make_server: Callable[..., Any], http: httpx.Client
) -> None:
    server = make_server()
    store: Store = server.platform.store
    seeded = seed_customer(store.engine)
    server.wait_config(lambda: bool(server.platform.config.current.snapshot.customers_by_key))
    watch = CommitWatch(store)
    accepted: list[str] = []
    # A packet of 3 recipients (INSERT … VALUES) and one of 40 (COPY on PostgreSQL).
    for serial, count in ((1, 3), (2, 40)):
        body = {
            "METHOD": "SMS_SEND_REQUEST", "TYPE": "REQUEST", "SERIAL": serial, "TIME": "t",
            "AUTH_KEY": seeded.auth_key, "ROUTE_ID": seeded.route, "VERSION": "2021-01-01",
            "SMS_CONTENT": "durable",
            "MULTI_MSISDN_LIST": [{"COUNTRY_CODE": 852, "DEST_MSISDN": f"670{serial}{n:04d}"}
                                  for n in range(count)],
        }  # fmt: skip
        answer = http.post(server.url, json=body).json()
        watch.events.append(("answer", -1))
        assert answer["RESULT_CODE"] == 1, answer
        accepted += [d["SMS_UID"] for d in answer["DETAIL_LIST"]]
    assert len(accepted) == 43 and all(accepted)

    assert watch.commits, "no commit wrote the accepted messages"
    not_durable = [
        (len(uids), s) for i, (uids, s) in enumerate(watch.commits) if not watch.durable(i)
    ]
    assert not not_durable, f"(messages, setting) committed without a flush: {not_durable}"
    if store.dialect == "postgresql":  # every accepted SMS_UID was in a watched commit
        seen = {uid for uids, _ in watch.commits for uid in uids}
        assert set(accepted) <= seen
    else:
        assert len(watch.commits) >= 2  # one commit per packet at least (sent one by one)
