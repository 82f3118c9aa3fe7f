"""Logging for every process: one JSON object per line (`LOG_FORMAT=json`) or readable text
(`LOG_FORMAT=text`, what `truffle-ashby dev` sets), at `LOG_LEVEL`.

Every line carries the ids it concerns, so an on-call engineer can search by any of them:

- `request_id` (ours, also sent back as `X-Request-ID`) and `workspace_id`, bound for the
  length of an HTTP request;
- `workflow_id`, `run_id`, `activity_type` and `attempt`, from Temporal's own workflow and
  activity loggers, which workflow and activity code log through;
- `screening_id`, `ashby_request_id` and the like, passed by the code that knows them.

Only ids: messages never carry a candidate's name, email or answers, nor any secret.
"""

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter
from temporalio import activity, workflow
from temporalio.runtime import LogForwardingConfig, LoggingConfig, TelemetryFilter

from truffle.settings import Settings

# The ids bound to the current request or task. A mutable dict, so ids noted in a dependency
# that FastAPI runs on a worker thread (with a copy of the context) still reach the middleware.
_bound: ContextVar[dict[str, str] | None] = ContextVar("truffle_log_ids", default=None)

# What Temporal's loggers put on a record, renamed to our flat keys.
_TEMPORAL_KEYS = {
    "workflow_id": "workflow_id",
    "run_id": "run_id",
    "workflow_run_id": "run_id",
    "workflow_type": "workflow_type",
    "activity_type": "activity_type",
    "attempt": "attempt",
    "task_queue": "task_queue",
}
# Temporal core's level names for ours.
_CORE_LEVELS = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARN", "ERROR": "ERROR"}
TEMPORAL_CORE_LOGGER = "temporalio.core"
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_JSON_FIELDS = ["asctime", "levelname", "name", "message"]
_ID_FIELDS = (
    "request_id",
    "workspace_id",
    "screening_id",
    "ashby_application_id",
    "workflow_id",
    "run_id",
    "activity_type",
    "attempt",
    "ashby_request_id",
)


@contextmanager
def bound_ids(**ids: object) -> Iterator[dict[str, str]]:
    """Binds ids to every line logged until the block ends (nested blocks add to them)."""
    current = _bound.get() or {}
    token = _bound.set({**current, **_as_text(ids)})
    try:
        yield _bound.get() or {}
    finally:
        _bound.reset(token)


def note_ids(**ids: object) -> None:
    """Adds ids to those already bound (a request learns its workspace after it starts)."""
    current = _bound.get()
    if current is not None:
        current.update(_as_text(ids))


def current_ids() -> Mapping[str, str]:
    return dict(_bound.get() or {})


def _as_text(ids: Mapping[str, object]) -> dict[str, str]:
    return {name: str(value) for name, value in ids.items() if value is not None}


class AttachIds(logging.Filter):
    """Puts the bound ids, and Temporal's workflow and activity ids, on the record itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_bound.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        # A forwarded core line's raw entry (its fields are already in the message): it would
        # only show as `<builtins.BufferedLogEntry object ...>`.
        record.__dict__.pop("temporal_log", None)
        for source in ("temporal_workflow", "temporal_activity"):
            details = record.__dict__.pop(source, None)
            if isinstance(details, Mapping):
                for key, name in _TEMPORAL_KEYS.items():
                    if key in details and not hasattr(record, name):
                        setattr(record, name, details[key])
        workflow_id = getattr(record, "workflow_id", None)
        if (
            isinstance(workflow_id, str)
            and workflow_id.startswith("screening-")
            and not hasattr(record, "screening_id")
        ):
            record.screening_id = workflow_id.removeprefix("screening-")
        return True


class TextWithIds(logging.Formatter):
    """`time LEVEL logger message [id=value ...]`."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(
            f"{name}={getattr(record, name)}" for name in _ID_FIELDS if hasattr(record, name)
        )
        return f"{text} [{ids}]" if ids else text


def formatter_for(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(
            _JSON_FIELDS,
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    return TextWithIds(_TEXT_FORMAT)


def configure_logging(settings: Settings, stream: Any = None) -> logging.Handler:
    """Sends every logger of the process (ours, uvicorn's, Temporal's) through one handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter_for(settings.log_format))
    handler.addFilter(AttachIds())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)  # LOG_LEVEL, set on the root, decides
        logger.disabled = False
    # uvicorn's own access line is off for good: it names the path, and a screener link's
    # token is in the path (the API's access line, api/access_log.py, names the route).
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    # The ids are on the record as fields; repeating them in the message only adds noise.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    return handler


def temporal_core_logging(log_level: str) -> LoggingConfig:
    """Temporal core's own lines (the Rust core under every client and worker: failed polls,
    connection retries, shutdowns) forwarded to the `temporalio.core` logger, so they leave
    through the one handler in LOG_FORMAT at LOG_LEVEL, not as coloured text on stderr.
    Libraries below the core (gRPC, HTTP/2) say only their errors, as by default."""
    return LoggingConfig(
        filter=TelemetryFilter(core_level=_CORE_LEVELS[log_level], other_level="ERROR"),
        forwarding=LogForwardingConfig(
            logger=logging.getLogger(TEMPORAL_CORE_LOGGER), append_target_to_name=False
        ),
    )
