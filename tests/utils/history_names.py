"""The file names of recorded workflow histories: one per test, `<test>__<case id>` per case of a
parametrized test, `test_` left off. A name comes from the test's function and its case's id,
never from pytest's node name, so the `[` and `]` around a case id never reach a file name."""

import re
from collections.abc import Callable
from typing import Any

import pytest

# Case ids are written by hand in `ids=`; they must make a plain, stable file name.
CASE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


def history_name(test: str, case: str | None = None) -> str:
    """`a_test` for `test_a_test`, `a_test__case` for its case `case`."""
    name = test.removeprefix("test_")
    if case is None:
        return name
    if not CASE_ID.match(case):
        raise ValueError(f"case id {case!r} of {test} is not a plain file name")
    return f"{name}__{case}"


def history_file(name: str, run: int = 1) -> str:
    """The file of a chain's `run`th run: `<name>.json`, then `<name>.run2.json`, ..."""
    return f"{name}.json" if run == 1 else f"{name}.run{run}.json"


def history_name_of(node: pytest.Item) -> str:
    """The history name of a collected test (one case of it, when it is parametrized)."""
    callspec = getattr(node, "callspec", None)
    return history_name(getattr(node, "originalname", node.name), callspec and callspec.id)


def history_names_of(test: Callable[..., Any]) -> list[str]:
    """The history names of a test function, one per case: what `history_name_of` gives each
    test pytest collects from it. Cases come from one `parametrize` mark with explicit ids."""
    marks = [mark for mark in getattr(test, "pytestmark", []) if mark.name == "parametrize"]
    if not marks:
        return [history_name(test.__name__)]
    if len(marks) > 1 or not isinstance(marks[0].kwargs.get("ids"), list | tuple):
        raise ValueError(f"{test.__name__}: one parametrize mark with a list of ids, please")
    return [history_name(test.__name__, case) for case in marks[0].kwargs["ids"]]
