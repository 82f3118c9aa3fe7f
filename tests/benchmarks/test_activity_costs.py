"""`benchmarks/activity_costs.py` at a small N, so the per-activity table in docs/performance.md
keeps working between its runs. The figures themselves are the benchmark's, never asserted."""

import re
import subprocess
import sys

from tests.utils.processes import REPO_ROOT

ROWS = ("invite email", '"Started" to Ashby', "the result to Ashby", "all three")


def test_the_activity_costs_come_side_by_side_for_every_activity() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/activity_costs.py", "--screenings", "3"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    table = done.stdout.split("| activity | product | direct | product / direct |", 1)[1]
    for row in ROWS:
        found = re.search(rf"\| {re.escape(row)} \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", table)
        assert found, f"no row for {row} in:\n{table}"
        product, direct, ratio = (float(value) for value in found.groups())
        assert product > 0
        assert direct > 0
        # Each figure is printed to 2 decimals: the ratio of the printed ones is off by as much.
        rounding = ratio * (0.005 / product + 0.005 / direct) + 0.005
        assert abs(ratio - product / direct) <= rounding * 1.01
