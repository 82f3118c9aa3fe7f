"""Log lines an on-call engineer can search: JSON or text, each with the ids it concerns."""

import dataclasses
import io
import json
import logging
from collections.abc import Iterator

import pytest
from temporalio import activity
from temporalio.runtime import TelemetryFilter
from temporalio.testing import ActivityEnvironment

from truffle.runtime.logs import bound_ids, configure_logging, note_ids, temporal_core_logging
from truffle.settings import Settings


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    access = logging.getLogger("uvicorn.access")
    access_propagates = access.propagate
    error = logging.getLogger("uvicorn.error")
    error_state = (error.level, error.propagate, error.disabled, list(error.handlers))
    yield
    error.setLevel(error_state[0])
    error.propagate, error.disabled, error.handlers[:] = (
        error_state[1],
        error_state[2],
        error_state[3],
    )
    root.handlers[:] = handlers
    root.setLevel(level)
    access.propagate = access_propagates
    activity.logger.activity_info_on_message = True


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_the_bound_ids_and_the_level() -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_format="json", log_level="info"), stream)
    logger = logging.getLogger("truffle.test")
    with bound_ids(request_id="r-1"):
        note_ids(workspace_id="w-1")
        logger.info("screening %s started", "s-1", extra={"screening_id": "s-1"})
    logger.debug("not at INFO")

    [line] = lines(stream)
    record = json.loads(line)
    assert record["message"] == "screening s-1 started"
    assert record["level"] == "INFO"
    assert record["logger"] == "truffle.test"
    assert (record["request_id"], record["workspace_id"], record["screening_id"]) == (
        "r-1",
        "w-1",
        "s-1",
    )
    assert "time" in record


@pytest.mark.usefixtures("restore_logging")
def test_ids_end_with_their_block() -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_format="json"), stream)
    with bound_ids(request_id="r-1"):
        pass
    logging.getLogger("truffle.test").warning("afterwards")
    assert "request_id" not in json.loads(lines(stream)[0])


@pytest.mark.usefixtures("restore_logging")
async def test_activity_lines_carry_the_workflow_run_and_screening() -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_format="json"), stream)

    @activity.defn
    async def speak() -> None:
        activity.logger.info("posted")

    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(
        environment.info,
        workflow_id="screening-0b9c",
        workflow_run_id="run-7",
        activity_type="post_assessment_update",
    )
    await environment.run(speak)

    record = json.loads(lines(stream)[0])
    assert record["message"] == "posted"  # the ids are fields, not repeated in the message
    assert record["workflow_id"] == "screening-0b9c"
    assert record["run_id"] == "run-7"
    assert record["screening_id"] == "0b9c"
    assert record["activity_type"] == "post_assessment_update"


@pytest.mark.usefixtures("restore_logging")
def test_text_lines_end_with_the_ids() -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_format="text"), stream)
    with bound_ids(request_id="r-1", workspace_id="w-1"):
        logging.getLogger("truffle.test").info("hello")
    assert lines(stream)[0].endswith("INFO truffle.test hello [request_id=r-1 workspace_id=w-1]")


def test_an_unknown_log_format_or_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log_format"):
        Settings(log_format="xml")
    with pytest.raises(ValueError, match="log_level"):
        Settings(log_level="LOUD")


@pytest.mark.usefixtures("restore_logging")
def test_uvicorns_access_line_with_the_path_never_reaches_the_log() -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_format="json"), stream)
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /s/secret-token HTTP/1.1" 200')
    logging.getLogger("uvicorn.error").info("Started server process")
    assert "secret-token" not in stream.getvalue()
    assert "Started server process" in stream.getvalue()


@pytest.mark.parametrize(("log_level", "core_level"), [("DEBUG", "DEBUG"), ("WARNING", "WARN")])
def test_temporal_cores_lines_are_forwarded_to_our_logging_at_log_level(
    log_level: str, core_level: str
) -> None:
    config = temporal_core_logging(log_level)

    assert isinstance(config.filter, TelemetryFilter)
    assert config.filter.core_level == core_level
    assert config.forwarding is not None
    assert config.forwarding.logger is logging.getLogger("temporalio.core")
