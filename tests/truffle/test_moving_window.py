"""The in-memory moving window behind the API's abuse limits and the worker's pacing."""

import threading

import pytest
from limits import parse

from truffle.runtime.moving_window import SWEEP_SECONDS, MovingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_gets_its_amount_per_window_and_the_wait_until_a_hit_leaves_it() -> None:
    clock = Clock()
    window = MovingWindow(clock)
    three_a_minute = parse("3/minute")

    for second in (0, 10, 20):
        clock.now = 1_000.0 + second
        assert window.hit(three_a_minute, "workspace-a") is None
    clock.now = 1_030.0
    assert window.hit(three_a_minute, "workspace-a") == 30.0  # the first hit leaves at 1,060
    assert window.hit(three_a_minute, "workspace-b") is None  # another key has its own

    clock.now = 1_060.0  # the first hit has left; the refused one was never counted
    assert window.hit(three_a_minute, "workspace-a") is None
    assert window.hit(three_a_minute, "workspace-a") == 10.0


def test_each_limit_counts_the_same_key_apart() -> None:
    clock = Clock()
    window = MovingWindow(clock)
    starts, connects = parse("2/minute"), parse("1/minute")

    assert window.hit(connects, "workspace") is None
    assert window.hit(connects, "workspace") == 60.0
    assert window.hit(starts, "workspace") is None
    assert window.hit(starts, "workspace") is None
    assert window.hit(starts, "workspace") == 60.0


def test_keys_idle_past_their_window_are_swept() -> None:
    """A limit per client address holds only the clients of its last window."""
    clock = Clock()
    window = MovingWindow(clock)
    per_client = parse("5/second")
    for client in range(1_000):
        window.hit(per_client, f"10.0.{client // 256}.{client % 256}")
    assert len(window) == 1_000

    clock.now += SWEEP_SECONDS
    window.hit(per_client, "10.9.9.9")

    assert len(window) == 1


def test_hits_from_many_threads_are_each_counted_once() -> None:
    window = MovingWindow()
    limit = parse("1000/hour")
    admitted: list[bool] = []

    def caller() -> None:
        for _ in range(300):
            admitted.append(window.hit(limit, "workspace") is None)

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert admitted.count(True) == 1_000
    assert admitted.count(False) == 200


def test_a_limit_of_none_refuses_every_hit_for_a_window() -> None:
    window = MovingWindow(Clock())
    assert window.hit(parse("0/hour"), "workspace") == 3_600.0


def test_it_starts_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """`limits`' own memory storage starts a timer thread for nearly every hit."""
    started: list[threading.Thread] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    window = MovingWindow()
    for index in range(50):
        window.hit(parse("50/second"), f"workspace-{index % 3}")
    assert started == []
