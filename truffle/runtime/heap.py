"""Python's garbage collector, set for a long-running service process once it has started.

The cycle collector's defaults suit short scripts. In the API and the worker they cost a
millisecond or more of CPU per screening and pauses that stop every request and workflow task
in the process while they run: a collection of the oldest generation walks every object the
process holds, and the objects made at startup (the modules, the app, the SDK, the workflow
code) are most of them and live as long as the process does. Measured with `load.py --gc`
(docs/performance.md), these settings take the API's and the worker's collections from 3.8 to
0.6 ms of CPU per screening, and their longest pause from over 200 ms to under 80.

- The objects alive at startup are frozen (`gc.freeze`): later collections skip them. What
  becomes garbage among them afterwards is still freed by reference counting; only a cycle of
  them would stay, and startup objects are kept for the process's life anyway.
- The youngest generation is collected after `YOUNG_THRESHOLD` new container objects instead
  of 700: a request or a workflow task makes and frees thousands, nearly all freed by
  reference counting before a collection would look at them. Cycles wait a little longer to be
  freed: the worker's RSS with 200 screenings open was 177 to 193 MiB in five load runs,
  against 178 and 180 for the code before.

Only the processes' entry points call this: a test process keeps Python's defaults.
"""

import gc

YOUNG_THRESHOLD = 10_000


def settle_after_startup() -> None:
    """Once a process has started (imported its code and built its app or worker)."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
