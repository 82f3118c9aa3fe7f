"""`benchmarks/step_costs.py` at a small N, so the per-step table in docs/performance.md keeps
working between its runs. The figures themselves are the benchmark's, never asserted."""

import re
import subprocess
import sys

from tests.utils.processes import REPO_ROOT

# Each step a screening takes, in the API or the worker, with the direct side's beside it.
COMPARED = (
    "`assessment.start`: the key check and the rows",
    "a new workflow's sandbox",
    "the invite email",
    "Begin",
    "Submit",
    '"Started" to Ashby',
    "the result to Ashby",
    "all of the API's steps",
    "all of the worker's steps",
)


def test_every_step_costs_come_side_by_side_with_the_baseline() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/step_costs.py", "--screenings", "3"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    table = done.stdout.split("| step | process | product | direct | product / direct |", 1)[1]
    for row in COMPARED:
        found = re.search(
            rf"\| {re.escape(row)} \| (API|worker) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", table
        )
        assert found, f"no row for {row} in:\n{table}"
        product, direct, ratio = (float(value) for value in found.groups()[1:])
        assert product > 0
        assert direct > 0
        # Each figure is printed to 2 decimals: the ratio of the printed ones is off by as much.
        rounding = ratio * (0.005 / product + 0.005 / direct) + 0.005
        assert abs(ratio - product / direct) <= rounding * 1.01
    # The screener's read has no counterpart in the baseline, whose page reads nothing.
    assert re.search(r"\| the screener page's read \| API \| [\d.]+ \| - \| - \|", table)
