"""A process's SQLite writers wait for their turn in a queue, not in SQLite's busy handler."""

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from truffle.storage import sqlite_writers
from truffle.storage.db import create_db_engine

SETTLE_SECONDS = 0.3  # long enough for a writer that does not wait to have written


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'writers.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE rows (value INTEGER)")
    yield engine
    engine.dispose()


def _insert(engine: sa.Engine, value: int, done: threading.Event) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO rows VALUES (?)", (value,))
    done.set()


def _turn(engine: sa.Engine) -> threading.Lock:
    """The lock the engine's writers queue for."""
    connection = engine.raw_connection()
    try:
        dbapi = connection.dbapi_connection
        assert isinstance(dbapi, sqlite_writers.QueuedWritersConnection)
        return dbapi.writers
    finally:
        connection.close()


def _values(engine: sa.Engine) -> list[int]:
    with engine.connect() as connection:
        return sorted(connection.exec_driver_sql("SELECT value FROM rows").scalars())


def test_a_writer_waits_for_the_open_write_and_goes_as_soon_as_it_commits(
    engine: sa.Engine,
) -> None:
    turn = _turn(engine)
    with engine.connect() as first:
        first.exec_driver_sql("INSERT INTO rows VALUES (1)")
        assert turn.locked()
        done = threading.Event()
        second = threading.Thread(target=_insert, args=(engine, 2, done))
        second.start()
        assert not done.wait(SETTLE_SECONDS)  # its turn comes after the open write
        first.commit()
        assert done.wait(10)
        second.join()
    assert _values(engine) == [1, 2]
    assert not turn.locked()


def test_reads_do_not_wait_for_a_write(engine: sa.Engine) -> None:
    turn = _turn(engine)
    with engine.connect() as reader:
        assert reader.exec_driver_sql("SELECT count(*) FROM rows").scalar() == 0
        assert not turn.locked()  # a read takes no turn, even inside a transaction
        with engine.connect() as writer:
            writer.exec_driver_sql("INSERT INTO rows VALUES (1)")
            assert _values(engine) == []  # read at once, before the write commits
            writer.commit()
    assert _values(engine) == [1]


@pytest.mark.parametrize("ending", ["rollback", "close", "failed statement"])
def test_the_turn_passes_on_however_the_write_ends(engine: sa.Engine, ending: str) -> None:
    turn = _turn(engine)
    first = engine.connect()
    if ending == "failed statement":
        with pytest.raises(sa.exc.OperationalError):
            first.exec_driver_sql("INSERT INTO missing VALUES (1)")
    else:
        first.exec_driver_sql("INSERT INTO rows VALUES (1)")
        assert turn.locked()
        first.rollback() if ending == "rollback" else first.close()
    assert not turn.locked()
    done = threading.Event()
    _insert(engine, 2, done)
    first.close()
    assert _values(engine) == [2]


def test_many_writers_at_once_all_write(engine: sa.Engine) -> None:
    def write(base: int) -> None:
        for offset in range(20):
            with engine.begin() as connection:
                connection.exec_driver_sql("INSERT INTO rows VALUES (?)", (base + offset,))
                connection.exec_driver_sql("UPDATE rows SET value = value WHERE value = ?", (0,))

    threads = [threading.Thread(target=write, args=(100 * number,)) for number in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _values(engine) == sorted(100 * n + o for n in range(12) for o in range(20))


def test_a_write_that_never_gets_its_turn_is_left_to_sqlites_own_timeout(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_writers, "QUEUE_TIMEOUT_SECONDS", 0.1)
    with engine.connect() as holder:
        holder.exec_driver_sql("INSERT INTO rows VALUES (1)")
        blocked = engine.connect()
        blocked.exec_driver_sql("PRAGMA busy_timeout = 100")
        with pytest.raises(sa.exc.OperationalError, match="database is locked"):
            blocked.exec_driver_sql("INSERT INTO rows VALUES (2)")
        blocked.close()
        holder.commit()
    assert _values(engine) == [1]


def test_each_engine_queues_its_own_writers(tmp_path: Path) -> None:
    first = create_db_engine(f"sqlite:///{tmp_path / 'one.db'}")
    second = create_db_engine(f"sqlite:///{tmp_path / 'two.db'}")
    assert _turn(first) is not _turn(second)
    for engine in (first, second):
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE rows (value INTEGER)")
    with first.connect() as writing:
        writing.exec_driver_sql("INSERT INTO rows VALUES (1)")
        done = threading.Event()
        _insert(second, 2, done)  # another file: not in the first one's queue
        writing.commit()
    assert _values(second) == [2]
    first.dispose()
    second.dispose()
