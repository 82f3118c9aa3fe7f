"""`benchmarks/chaos.py` in miniature, so the scale-out proof keeps working between the runs whose
figures are in docs/performance.md: 6 screenings through 2 API processes and 2 workers, a worker
SIGKILLed every 3 seconds (the script's default: a replacement worker needs a second or two to
start on a busy 2-core machine, and a kill every second can then leave no worker up long enough
to finish a task), at most 4 of them: a kill that cuts off an activity leaves its screening
waiting out the activity's 30 s timeout, and kills every 3 s all that while only cost
replacement workers. It takes 20 to 60 s on a 2-core machine."""

import re
import subprocess
import sys

from tests.utils.processes import REPO_ROOT

SUMMARY = re.compile(
    r"screenings 6, delivered (?P<delivered>\d+)/6, lost (?P<lost>\d+), "
    r"duplicate emails (?P<duplicates>\d+), non-identical re-posts (?P<re_posts>\d+), "
    r"worker kills (?P<kills>\d+)"
)


def test_screenings_survive_workers_killed_under_two_apis() -> None:
    done = subprocess.run(
        [
            sys.executable, "benchmarks/chaos.py",
            "--screenings", "6", "--apis", "2", "--workers", "2",
            "--kill-every", "3", "--max-kills", "4", "--concurrency", "2", "--seed", "11",
            "--timeout", "120",
        ],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    summary = SUMMARY.search(done.stdout)
    assert summary is not None, done.stdout + done.stderr
    figures = {name: int(value) for name, value in summary.groupdict().items()}
    assert (figures["delivered"], figures["lost"]) == (6, 0), done.stdout
    assert (figures["duplicates"], figures["re_posts"]) == (0, 0), done.stdout
    assert 1 <= figures["kills"] <= 4
    assert done.returncode == 0
