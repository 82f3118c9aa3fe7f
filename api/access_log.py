"""uvicorn's access log without the secret part of screener links.

A screener link's token lets anyone answer as the candidate, so it must not sit in log files.
"""

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

_SCREENER_PATH = re.compile(r"^/s/[^/?]+")


class HideScreenerTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's access record args: (client, method, path, http version, status).
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = _SCREENER_PATH.sub("/s/<token>", str(args[2]))
            record.args = tuple(args)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["hide_screener_tokens"] = {
        "()": "api.access_log.HideScreenerTokens"
    }
    config["handlers"]["access"]["filters"] = ["hide_screener_tokens"]
    return config
