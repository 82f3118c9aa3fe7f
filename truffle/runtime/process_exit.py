"""How a process ends once its work is done, with its own exit code. It imports nothing of
Temporal's: a process that never loaded Temporal (the sandbox, the mail sink, most commands)
ends as Python ends."""

import logging
import os
import sys
from typing import NoReturn


def end_process(code: int) -> NoReturn:
    """Ends the process with `code`. Once Temporal's native bridge is loaded, its threads
    can call into Python while the interpreter finalizes, and the process then dies on
    SIGABRT instead of exiting with its code (temporalio/sdk-python#300). So such a process
    flushes its logs and output, then ends without finalizing: every command has closed what
    it opened (engines, clients, servers) before it returns."""
    if "temporalio.bridge.temporal_sdk_bridge" not in sys.modules:
        sys.exit(code)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
