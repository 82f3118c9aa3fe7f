"""Records how long each of this process's garbage collections takes, for `load.py --gc`.

Python imports this module at startup when its folder is on PYTHONPATH, which `load.py --gc`
sets for every process it starts. With GC_PROBE_DIR set, each collection's end time (the wall
clock, so the driver can cut the run into its phases), generation and duration are appended
to `GC_PROBE_DIR/<pid>.gc`, after a first line with the process's command line (JSON). A thread
appends what is new twice a second, so a collection reaches the file within half a second.
"""

import collections
import gc
import json
import os
import sys
import threading
import time

_FOLDER = os.environ.get("GC_PROBE_DIR")
_WRITE_EVERY_SECONDS = 0.5


def _install(folder: str) -> None:
    # A deque, not a lock: a collection may run (and call back) in the writing thread itself.
    pending: collections.deque[str] = collections.deque()
    began = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
            return
        took = time.perf_counter() - began[0]
        pending.append(f"{time.time():.4f} {info['generation']} {took:.6f}\n")

    path = os.path.join(folder, f"{os.getpid()}.gc")

    def write() -> None:
        time.sleep(_WRITE_EVERY_SECONDS)
        # Written once startup is over: `python -m` sets sys.argv after this module runs.
        with open(path, "w") as file:
            file.write(json.dumps(sys.argv) + "\n")
        while True:
            lines = [pending.popleft() for _ in range(len(pending))]
            if lines:
                with open(path, "a") as file:
                    file.writelines(lines)
            time.sleep(_WRITE_EVERY_SECONDS)

    gc.callbacks.append(timed)
    threading.Thread(target=write, name="gc-probe", daemon=True).start()


if _FOLDER:
    _install(_FOLDER)
