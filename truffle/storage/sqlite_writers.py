"""SQLite connections whose writers, within one process, wait their turn in a queue.

SQLite lets one connection write at a time. A connection that finds the write lock taken does
not wait for it to be released: its busy handler sleeps and tries again, 1, 2, 5, 10, ... up to
100 ms at a time, so under concurrent writes an unlucky writer keeps sleeping well after the lock
is free. With 20 `assessment.start` calls writing at once, that made the rows of a start take
5 ms at the median and over 200 ms at p99 (docs/performance.md, "Start p99").

Here a connection takes its engine's in-process lock just before its first write of a
transaction (SQLite takes its own lock at that same statement) and gives it back once the
transaction has ended, after the commit or rollback itself: the next writer of the process goes
as soon as the lock is free. Reads take nothing. The writes of other processes (the API's
against the worker's) still wait in SQLite's busy handler, as before.

A writer that has waited `QUEUE_TIMEOUT_SECONDS` goes on to SQLite without its turn, where the
busy timeout applies as it did before: a mistake that holds a write open across another write
of the same process ends in SQLite's "database is locked", never in a hang.
"""

import sqlite3
import threading
from typing import Any

# As long as SQLite's own busy timeout (`create_db_engine`'s `timeout`).
QUEUE_TIMEOUT_SECONDS = 30.0
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _writes(statement: str) -> bool:
    """Whether the statement makes Python's sqlite3 open a transaction (and so SQLite take its
    write lock)."""
    return statement.lstrip()[:7].upper().startswith(_WRITES)


class _QueuedCursor(sqlite3.Cursor):
    connection: "QueuedWritersConnection"

    def execute(self, sql: str, parameters: Any = (), /) -> "_QueuedCursor":
        self.connection.before_statement(sql)
        try:
            return super().execute(sql, parameters)
        finally:
            self.connection.after_statement()

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> "_QueuedCursor":
        self.connection.before_statement(sql)
        try:
            return super().executemany(sql, seq_of_parameters)
        finally:
            self.connection.after_statement()


class QueuedWritersConnection(sqlite3.Connection):
    """A sqlite3 connection that holds its class's `writers` lock while it writes. Made per
    engine by `queued_writers_connection`, so each engine has a lock of its own."""

    writers: threading.Lock
    _holding = False

    def before_statement(self, sql: str) -> None:
        if not self._holding and _writes(sql):
            self._holding = self.writers.acquire(timeout=QUEUE_TIMEOUT_SECONDS)

    def after_statement(self) -> None:
        # A write outside a transaction (autocommit), or one that failed before SQLite began
        # the transaction, has nothing more to wait for.
        if not self.in_transaction:
            self._release()

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            self.writers.release()

    def cursor(self, factory: Any = _QueuedCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        cursor: sqlite3.Cursor = self.cursor()
        return cursor.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        cursor: sqlite3.Cursor = self.cursor()
        return cursor.executemany(sql, parameters)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()


def queued_writers_connection() -> type[QueuedWritersConnection]:
    """A connection class with a write lock of its own, for one engine's connections
    (`sqlite3.connect(..., factory=...)`)."""
    lock = threading.Lock()
    return type("QueuedWritersConnection", (QueuedWritersConnection,), {"writers": lock})
