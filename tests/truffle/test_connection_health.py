"""Each health rule, from a recorded sequence of delivery outcomes written the way activities
write them."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select, update

from tests.utils.factories import connect_live, make_workspace
from truffle.ashby import connection_health as health
from truffle.ashby import connections, webhooks
from truffle.ashby.connection_health import Health
from truffle.audit import Actor
from truffle.contracts import AshbyOutcome
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import AshbyConnection, AshbyWebhookEndpoint, Workspace, utcnow

# The core on both databases the product supports.
pytestmark = pytest.mark.both_databases

T0 = datetime(2026, 11, 29, 10, 2, tzinfo=UTC)
Event = tuple[timedelta, str]  # (offset from T0, "ok" or an AshbyOutcome)


@pytest.fixture
def workspace(engine: sa.Engine, settings: Settings) -> Workspace:
    workspace = make_workspace(engine)[0]
    connect_live(engine, KeyRing(settings.secret_keys()), workspace, "ashby-key")
    return workspace


def replay(engine: sa.Engine, workspace: Workspace, events: list[Event]) -> health.HealthSnapshot:
    with Session(engine) as session:
        for offset, outcome in events:
            at = T0 + offset
            if outcome == "ok":
                health.record_success(session, workspace.id, at)
            else:
                problem = None if outcome == health.WORKFLOW_FAILED else AshbyOutcome(outcome)
                health.record_failure(
                    session, workspace.id, problem, at, http_status=_status(outcome),
                    code="invalid_input" if outcome == "rejected" else None, request_id="R-1",
                )  # fmt: skip
        session.commit()
        connection = session.exec(
            select(AshbyConnection).where(AshbyConnection.workspace_id == workspace.id)
        ).one()
        return health.snapshot_of(connection)


def _status(outcome: str) -> int | None:
    return {"key_rejected": 401, "rate_limited": 429, "server_error": 500, "rejected": 200}.get(
        outcome
    )


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def test_a_live_connection_with_only_successes_is_connected(
    engine: sa.Engine, workspace: Workspace
) -> None:
    snapshot = replay(engine, workspace, [(minutes(0), "ok"), (minutes(5), "ok")])
    assert health.assess(snapshot, T0 + minutes(6)) == health.Assessment(
        Health.connected, "The integration is healthy."
    )


@pytest.mark.parametrize(
    ("problem", "phrase"),
    [
        ("rate_limited", "Ashby asked Truffle to slow down (HTTP 429)"),
        ("server_error", "Ashby answered with an error (HTTP 500)"),
        ("unreachable", "Ashby could not be reached"),
        ("rejected", "Ashby rejected a screening update (invalid_input)"),
        ("workflow_failed", "a screening failed inside Truffle"),
        (
            "hold_expired",
            "an update waited for the connection longer than HELD_UPDATE_RETENTION and was "
            "given up",
        ),
    ],
)
def test_a_failure_among_successes_degrades_for_24_hours(
    engine: sa.Engine, workspace: Workspace, problem: str, phrase: str
) -> None:
    snapshot = replay(engine, workspace, [(minutes(0), problem), (minutes(1), "ok")])
    degraded = health.assess(snapshot, T0 + timedelta(hours=23))
    assert degraded.health == Health.degraded
    assert degraded.message.startswith(f"On 29 Nov at 10:02 {phrase}.")
    assert "Results are still reaching Ashby." in degraded.message
    assert health.assess(snapshot, T0 + timedelta(hours=24, minutes=1)).health == Health.connected


def test_a_rejected_update_names_ashbys_request_id(engine: sa.Engine, workspace: Workspace) -> None:
    snapshot = replay(engine, workspace, [(minutes(0), "rejected")])
    assert "Ashby request id: R-1." in health.assess(snapshot, T0 + minutes(1)).message


def test_a_rejected_key_needs_action_until_results_flow_again(
    engine: sa.Engine, workspace: Workspace
) -> None:
    snapshot = replay(engine, workspace, [(minutes(0), "ok"), (minutes(10), "key_rejected")])
    red = health.assess(snapshot, T0 + minutes(11))
    assert red == health.Assessment(
        Health.action_needed,
        "Ashby rejected the Ashby API key on 29 Nov at 10:12. Create a new key in Ashby and "
        "reconnect.",
    )
    recovered = replay(engine, workspace, [(minutes(20), "ok")])
    assert health.assess(recovered, T0 + minutes(21)).health == Health.degraded


def test_a_key_without_the_write_permission_says_so(
    engine: sa.Engine, workspace: Workspace
) -> None:
    snapshot = replay(engine, workspace, [(minutes(0), "missing_permission")])
    assessed = health.assess(snapshot, T0 + minutes(1))
    assert assessed.health == Health.action_needed
    assert "lacks the candidatesWrite permission" in assessed.message


def test_repeated_failures_with_no_success_need_action_and_clear_on_the_next_success(
    engine: sa.Engine, workspace: Workspace
) -> None:
    failures: list[Event] = [(minutes(n), "server_error") for n in range(health.REPEATED_FAILURES)]
    four = replay(engine, workspace, failures[:-1])
    assert health.assess(four, T0 + minutes(5)).health == Health.degraded
    five = replay(engine, workspace, failures[-1:])
    red = health.assess(five, T0 + minutes(5))
    assert red.health == Health.action_needed
    assert red.message.startswith(
        "Results have not reached Ashby since 29 Nov at 10:02: Ashby answered with an error "
        "(HTTP 500)."
    )
    cleared = replay(engine, workspace, [(minutes(6), "ok")])
    assert health.assess(cleared, T0 + minutes(7)).health == Health.degraded
    assert cleared.failures_since_success == 0


def test_a_success_is_written_when_it_clears_a_failure_else_at_most_every_30_s(
    engine: sa.Engine, workspace: Workspace
) -> None:
    seconds = health.SUCCESS_WRITE_INTERVAL.total_seconds()
    first = replay(engine, workspace, [(timedelta(0), "ok")])
    assert first.last_result_at == T0
    # The card's last activity may lag by up to the interval; nothing else on it changes.
    soon = replay(engine, workspace, [(timedelta(seconds=seconds - 1), "ok")])
    assert soon.last_result_at == T0
    later = replay(engine, workspace, [(timedelta(seconds=seconds), "ok")])
    assert later.last_result_at == T0 + timedelta(seconds=seconds)
    # A failure, then a success a second later: written at once, so the health recovers.
    recovered = replay(
        engine,
        workspace,
        [(timedelta(seconds=seconds + 1), "server_error"), (timedelta(seconds=seconds + 2), "ok")],
    )
    assert recovered.last_result_at == T0 + timedelta(seconds=seconds + 2)
    assert (recovered.failures_since_success, recovered.failing_since) == (0, None)


def test_reconnecting_starts_health_afresh(
    engine: sa.Engine, workspace: Workspace, settings: Settings
) -> None:
    replay(engine, workspace, [(minutes(0), "key_rejected")])
    connections.establish(
        engine,
        KeyRing(settings.secret_keys()),
        workspace,
        "new-ashby-key",
        reconnect=True,
        actor=Actor.operator(),
    )
    snapshot = replay(engine, workspace, [])
    assert snapshot == health.HealthSnapshot(last_result_at=None)


def test_the_card_reads_the_health_of_a_live_connection(
    engine: sa.Engine, workspace: Workspace
) -> None:
    replay(engine, workspace, [(minutes(0), "key_rejected")])
    with Session(engine) as session:
        card = connections.build_card(session, workspace, "http://testserver")
    assert card.status == "action_needed"
    assert card.label == "Action needed"
    assert card.message.startswith("Ashby rejected the Ashby API key on 29 Nov at 10:02.")


@pytest.mark.parametrize(
    ("age", "status"),
    [
        pytest.param(timedelta(hours=23, minutes=59), "degraded", id="23h59m-ago"),
        pytest.param(timedelta(hours=24, minutes=1), "connected", id="24h01m-ago"),
    ],
)
def test_a_refused_webhook_signature_degrades_the_card_for_24_hours(
    engine: sa.Engine, settings: Settings, workspace: Workspace, age: timedelta, status: str
) -> None:
    with Session(engine) as session:
        endpoint, _ = webhooks.rotate_secret(
            session, KeyRing(settings.secret_keys()), workspace.id, actor=Actor.operator()
        )
        session.exec(
            update(AshbyWebhookEndpoint)
            .where(col(AshbyWebhookEndpoint.id) == endpoint.id)
            .values(
                last_signature_failure_at=utcnow() - age,
                signature_refusals=webhooks.DEGRADING_REFUSALS,
            )
        )
        session.commit()
        card = connections.build_card(session, workspace, "http://testserver")

    assert card.status == status
    assert ("signature did not match" in card.message) == (status == "degraded")
