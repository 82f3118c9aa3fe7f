"""What an on-call engineer relies on, from the processes as production runs them: JSON logs
with ids, Prometheus metrics, readiness, and a worker that drains on SIGTERM."""

import asyncio
import json
import re
import signal
import time
import uuid
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.enums.v1 import EventType, PendingActivityState

from tests.utils.factories import GOOD_ANSWERS
from tests.utils.journeys import (
    ashby_updates,
    candidate_completes,
    connect_workspace,
    start_screening,
    wait_for_updates,
)
from tests.utils.stack import Stack
from tools.ashby_sandbox.client import assessment_start_body
from truffle.runtime.metrics import GAUGE_MAX_AGE_SECONDS

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def log_records(stack: Stack, name: str) -> list[dict[str, Any]]:
    """Every line of a process's log, each of which must be one JSON object."""
    records = []
    for line in (stack.logs / name).read_text().splitlines():
        record = json.loads(line)
        assert isinstance(record, dict), line
        records.append(record)
    return records


def samples(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """`/metrics` parsed as Prometheus does: sample name -> [(labels, value)]."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def total(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(
        value
        for sample_labels, value in found.get(name, [])
        if all(sample_labels.get(key) == wanted for key, wanted in labels.items())
    )


def done_by_type(found: dict[str, list[tuple[dict[str, str], float]]], name: str) -> dict[str, int]:
    """A Temporal SDK counter's total per activity type."""
    done: dict[str, int] = {}
    for labels, value in found.get(name, []):
        done[labels["activity_type"]] = done.get(labels["activity_type"], 0) + int(value)
    return done


def test_logs_metrics_and_probes_tell_what_happened_without_personal_data(own_stack: Stack) -> None:
    stack = own_stack
    connected = connect_workspace(stack)
    address = f"ops-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = start_screening(stack, connected, address)
    candidate_completes(stack.screener_link(address), GOOD_ANSWERS)
    wait_for_updates(stack, assessment_id, 2)

    # A scrape reports the database gauges last read and has them read again when they are
    # older than GAUGE_MAX_AGE_SECONDS: they show the connection within that.
    deadline = time.monotonic() + GAUGE_MAX_AGE_SECONDS + 5
    while (
        total(api := samples(stack.api_metrics_url), "truffle_connections", status="connected") < 1
    ):
        assert time.monotonic() < deadline, api.get("truffle_connections")
        time.sleep(0.2)
    worker = samples(stack.worker_metrics_url)
    assert total(api, "truffle_screenings_started_total") == 1
    assert total(api, "truffle_held_updates") == 0
    assert total(api, "truffle_http_requests_total", route="/ashby/assessment.start") == 1
    assert total(worker, "truffle_emails_total", kind="invite", outcome="sent") == 1
    # "Started" and the result ("Invited", with the deadline, went in the start's reply).
    assert total(worker, "truffle_ashby_deliveries_total", outcome="ok", http_status="200") == 2
    # The Temporal SDK's own runtime metrics, from the same endpoint.
    assert total(worker, "temporal_workflow_task_schedule_to_start_latency_seconds_count") > 0
    # The invite and the two posts, and no database step at all: a first run reads nothing
    # from the database, gets its score with the submit, and the result's post settles the
    # screening. Counted as they succeeded: an attempt a busy machine cut short is retried,
    # and counted again as executed.
    assert done_by_type(worker, "temporal_activity_succeed_endtoend_latency_seconds_count") == {
        "send_screening_email": 1,
        "post_assessment_update": 2,
    }
    assert (
        done_by_type(worker, "temporal_local_activity_succeed_endtoend_latency_seconds_count") == {}
    )
    assert total(worker, "truffle_screenings_closed_total", status="completed") == 1
    assert any(name.startswith("temporal_worker_task_slots") for name in worker)
    for found in (api, worker):
        for name, values in found.items():
            for labels, _ in values:
                # (The tests' task queue names are unique per test; production's is fixed.)
                text = json.dumps({k: v for k, v in labels.items() if k != "task_queue"})
                assert not UUID.search(text), f"an id in a label of {name}: {text}"
                assert address not in text

    assert httpx.get(f"{stack.api_url}/metrics").status_code == 404  # not on the public port
    for url in (stack.api_metrics_url, stack.worker_metrics_url):
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"ready": True, "database": "ok", "temporal": "ok"}

    api_log = log_records(stack, "api.log")
    [start] = [r for r in api_log if r.get("route") == "/ashby/assessment.start"]
    assert start["status"] == 200
    assert start["request_id"]
    assert start["workspace_id"]
    assert any(r.get("screening_id") == assessment_id for r in api_log)
    worker_log = log_records(stack, "worker.log")
    [result_posted] = [
        r for r in worker_log
        if r.get("screening_id") == assessment_id and r["message"].startswith("result update")
    ]  # fmt: skip
    assert result_posted["workflow_id"] == f"screening-{assessment_id}"
    assert result_posted["run_id"]
    assert result_posted["activity_type"] == "post_assessment_update"
    everything = json.dumps(api_log + worker_log)
    for personal_or_secret in (address, "Grace", "Hopper", connected.ashby_key["key"]):
        assert personal_or_secret not in everything


def test_sigterm_lets_an_in_flight_post_to_ashby_finish(own_stack: Stack) -> None:
    stack = own_stack
    connected = connect_workspace(stack)
    address = f"drain-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = start_screening(stack, connected, address)
    link = stack.screener_link(address)
    # Ashby takes 3 s to answer the next call (the "Started" update).
    stack.sandbox.inject_fault(connected.ashby_key["id"], "delay", delay_seconds=3)
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        assert browser.post(f"{link}/begin").status_code == 303

    handle = stack.client.get_workflow_handle(f"screening-{assessment_id}")
    asyncio.run(_until_post_in_flight(handle))
    assert stack.worker is not None
    stack.worker.send_signal(signal.SIGTERM)
    assert stack.worker.wait(timeout=30) == 0

    [started] = ashby_updates(stack, assessment_id)
    assert started["body"]["assessment_status"]["value"] == "Started"
    events = asyncio.run(_events(handle))
    # The post finished on its first attempt: it was neither cut off nor retried.
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED in events
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED not in events
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT not in events
    assert "stopping: no new work is taken" in (stack.logs / "worker.log").read_text()


async def _until_post_in_flight(handle: Any) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        description = await handle.describe()
        for pending in description.raw_description.pending_activities:
            if (
                pending.activity_type.name == "post_assessment_update"
                and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            ):
                await asyncio.sleep(0.5)  # the request is on its way to Ashby
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the post to Ashby never started")


async def _events(handle: Any) -> list[int]:
    history = await handle.fetch_history()
    return [event.event_type for event in history.events]


def test_a_burst_of_starts_beyond_the_connection_pool_is_answered(stack: Stack) -> None:
    """Ashby may start many screenings at once (a recruiter moving a whole stage): more
    concurrent starts than the API's connection pool holds (5 + 10) all succeed."""
    connected = connect_workspace(stack)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as http:

            async def start(index: int) -> int:
                reply = await http.post(
                    f"{stack.partner_base_url}/assessment.start",
                    auth=(connected.truffle_key, ""),
                    json=assessment_start_body(
                        connected.position_id, f"burst-{index}@example.test", "Burst", "Test"
                    ),
                )
                return reply.status_code

            return await asyncio.gather(*(start(index) for index in range(40)))

    assert asyncio.run(burst()) == [200] * 40
