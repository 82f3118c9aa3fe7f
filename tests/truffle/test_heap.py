"""The collector settings the API's and the worker's processes take once they have started."""

import gc
import weakref
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

import api.app
from truffle.runtime import heap


@pytest.fixture
def settled() -> Iterator[None]:
    """This test process settled as a service process is, then given Python's defaults back."""
    threshold = gc.get_threshold()
    heap.settle_after_startup()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> "weakref.ref[_Node]":
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return weakref.ref(first)


def test_what_was_alive_at_startup_is_left_out_of_later_collections(settled: None) -> None:
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD


def test_a_cycle_made_after_startup_is_still_freed(settled: None) -> None:
    cycle = _cycle()
    assert cycle() is not None  # reference counting alone cannot free it
    gc.collect()
    assert cycle() is None


def test_each_api_process_settles_once_its_app_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    # Settings of its own: the process-wide cached ones stay as they were for later tests.
    monkeypatch.setattr(api.app, "get_settings", lambda: SimpleNamespace(metrics_port=None))
    monkeypatch.setattr(api.app, "create_app", lambda *_, **__: order.append("built"))
    monkeypatch.setattr(api.app, "settle_after_startup", lambda: order.append("settled"))
    monkeypatch.setattr("truffle.runtime.logs.configure_logging", lambda _settings: None)
    api.app.production_app()
    assert order == ["built", "settled"]
