"""`benchmarks/load.py` in miniature, so the comparison whose table is in docs/performance.md keeps
working between its runs: three sides in one run, every goal marked, the bulk send with the
defaults, open screenings with every column of their table; and Temporal Cloud's billable
actions counted from recorded histories. The figures
themselves are the benchmark's, never asserted here."""

import importlib
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from tests.utils.processes import REPO_ROOT
from tools.billable_actions import billable_actions

HISTORIES = REPO_ROOT / "tests" / "workflows" / "histories"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "benchmarks"
GOALS = (
    "start latency p50 / p99",
    "whole lifecycles per second",
    "submit → result, under load",
    "submit → result, one at a time, once Started is at Ashby",
    "submit → result, one at a time, submit at once after Begin",
    "API + worker CPU per lifecycle",
    "Temporal Cloud billable actions per screening",
)


def run_load(*arguments: str) -> subprocess.CompletedProcess[str]:
    """load.py's run, its output also kept in test-artifacts/benchmarks/ (its progress lines
    say when each step ended, for a run that took longer than it should). It starts with SIGINT
    ignored, as a shell starts a command in the background: every process of every side must
    still stop on the SIGINT that ends it, never wait out its grace to be killed."""
    done = subprocess.run(
        [sys.executable, "benchmarks/load.py", *arguments],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=400, check=False,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = "load" + "".join(f"_{argument.lstrip('-')}" for argument in arguments) + ".txt"
    (ARTIFACTS / name).write_text(done.stdout + done.stderr)
    assert "; killed" not in done.stderr, done.stderr
    return done


def test_a_started_answered_and_posted_screening_costs_its_actions_by_clouds_definition() -> None:
    recorded = HISTORIES / "v5" / "started_then_completed_posts_started_then_the_result.json"
    history = WorkflowHistory.from_json("screening", recorded.read_text())

    assert billable_actions(history.events) == {
        "workflow started": 1,
        "activities": 4,  # the invite, then Invited, Started and the result posted
        "signals": 2,
        "timers": 1,
        # Two ScreeningStatus upserts; the patch's TemporalChangeVersion upsert is exempt.
        "search-attribute upserts": 2,
        # The patch markers, the close and the settle: three workflow tasks.
        "local activities and markers (one per workflow task)": 3,
    }


def test_retries_count_each_attempt_and_a_child_workflow_counts_twice() -> None:
    started = HistoryEvent(event_type=EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    started.activity_task_started_event_attributes.attempt = 3
    child = HistoryEvent(event_type=EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED)

    assert billable_actions([started, child]) == {"activity retries": 2, "child workflows": 2}


def test_three_sides_are_measured_in_one_run_and_every_goal_is_marked() -> None:
    done = run_load("--screenings", "3", "--concurrency", "2", "--one-at-a-time", "1", "--gc")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "| figure | product | bare Temporal | direct |" in done.stdout
    for goal in GOALS:
        row = next((line for line in done.stdout.splitlines() if goal in line), None)
        assert row is not None, f"{goal}: {done.stdout}"
        assert re.search(r"\| (met|\*\*missed\*\*): [^|]+\|$", row), row
    assert "| workflow started | 1.0 | 1.0 | 1.0 |" in done.stdout
    # --gc: every side's worker timed, the API of the two sides that have one.
    worker = next(line for line in done.stdout.splitlines() if line.startswith("| worker | lif"))
    assert re.fullmatch(r"\| worker \| lifecycles \| [^|]+( \| \d+\.\d\d){3} \|", worker), worker
    api = next(line for line in done.stdout.splitlines() if line.startswith("| API | lifecycles"))
    assert re.fullmatch(r"\| API \| lifecycles \| [^|]+ \| \d+\.\d\d \| - \| \d+\.\d\d \|", api)


def test_rounds_are_pooled_so_each_rate_and_cost_is_the_whole_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    load = importlib.import_module("load")
    quick = load.Figures(
        starts=[0.1] * 10, starts_elapsed=1.0, lifecycles=10, lifecycles_elapsed=2.0,
        loaded=[0.5], cpu={"lifecycles": {"worker": 1.0, "API": 0.5}},
        history_events=30.0, actions={"signals": 2.0}, rss_mib=100.0,
    )  # fmt: skip
    slow = load.Figures(
        starts=[0.3] * 10, starts_elapsed=3.0, lifecycles=10, lifecycles_elapsed=8.0,
        loaded=[1.5], cpu={"lifecycles": {"worker": 3.0, "API": 0.5}},
        history_events=32.0, actions={"signals": 2.0, "timers": 1.0}, rss_mib=120.0,
    )  # fmt: skip

    total = load.pooled([quick, slow])

    assert total.starts_per_second == 20 / 4.0  # not the mean of 10/s and 3.3/s
    assert total.lifecycles_per_second == 20 / 10.0
    assert load.lifecycle_cpu_ms(total, ("API", "worker")) == 5.0 / 20 * 1000
    assert sorted(total.loaded) == [0.5, 1.5]
    assert total.history_events == 31.0
    assert total.actions == {"signals": 2.0, "timers": 0.5}
    assert total.rss_mib == 120.0


def test_a_bulk_send_with_the_defaults_is_all_answered_and_invited() -> None:
    done = run_load("--bulk", "5", "--concurrency", "5")

    assert "answered 200: 5/5" in done.stdout, done.stdout + done.stderr
    assert "invited: 5/5" in done.stdout
    assert done.returncode == 0


def test_open_screenings_are_counted_with_their_memory_database_and_history_bytes() -> None:
    done = run_load("--open", "5", "--concurrency", "5")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Temporal lists 5 screening workflows running" in done.stdout
    header = next(line for line in done.stdout.splitlines() if line.startswith("| open screenings"))
    for column in (
        "starts/s product", "worker RSS product", "product RSS per screening added",
        "SQLite bytes per open screening", "Temporal history bytes per waiting screening",
    ):  # fmt: skip
        assert column in header, header
    row = next(line for line in done.stdout.splitlines() if line.startswith("| 5 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert len(cells) == header.count("|") - 1
    # Every figure measured: the bare side's too, the database grew, the histories have bytes.
    assert all(cell not in ("-", "0") for cell in cells), row


def test_the_open_table_of_the_bare_workflow_alone_compares_its_own_checkpoints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    load = importlib.import_module("load")
    rows = [
        load.OpenStep(open=1_000, starts_per_second=80.0, start_p99_ms=300.0, rss_mib=120.0),
        load.OpenStep(open=50_000, starts_per_second=60.0, start_p99_ms=500.0, rss_mib=180.0),
    ]
    options = load.argparse.Namespace(concurrency=20, database_url=None)

    lines = load.open_table([1_000, 50_000], None, (80.0, rows), options)

    assert "product not run, bare 80 MiB" in lines[1]
    last = next(line for line in lines if line.startswith("| 50,000 |"))
    cells = [cell.strip() for cell in last.strip("|").split("|")]
    assert cells[:4] == ["50,000", "-", "60.0", "-"]
    assert cells[7] == "180 MiB"
    assert lines[-1] == "bare starts/s at 50,000 open against 1,000 open: 0.75"


async def test_rounds_in_one_database_each_connect_their_own_sandbox(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`--rounds R --database-url URL`: each round's stack finds the workspace connected to the
    sandbox of the round before, and reconnects it to its own, as an admin would."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    load = importlib.import_module("load")
    database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    keys = []
    for number in (1, 2):
        async with load.product_stack(tmp_path / f"round-{number}", database_url) as product:
            await product.start(f"round-{number}@candidates.example")  # answered 200
            keys.append(product.truffle_key)

    assert keys[0] != keys[1]
