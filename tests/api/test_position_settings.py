"""A position's invite settings in the JSON API: defaults, versioned with the position, and
refused in words (422) when they cannot be kept."""

import pytest
from fastapi.testclient import TestClient

from tests.api.test_positions import BACKEND_ENGINEER
from tests.utils.workspaces import MakeWorkspace

GERMAN_2_DAYS = {
    **BACKEND_ENGINEER,
    "expiry_days": 2,
    "reminders": [{"after_invite_hours": 12}, {"before_deadline_hours": 6}],
    "language": "de",
    "invite_subject": "Ihr Screening für {position_name}",
    "invite_intro": "Hallo {candidate_first_name}, bitte antworten Sie bis {deadline}.",
}


def test_a_new_position_has_todays_settings_by_default(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    created = client.post("/api/positions", json=BACKEND_ENGINEER, headers=acme.headers).json()

    assert {key: created[key] for key in GERMAN_2_DAYS if key in created and key not in
            BACKEND_ENGINEER} == {
        "expiry_days": 7,
        "reminders": [{"after_invite_hours": 48, "before_deadline_hours": None},
                      {"after_invite_hours": None, "before_deadline_hours": 24}],
        "language": "en",
        "invite_subject": None,
        "invite_intro": None,
    }  # fmt: skip


def test_settings_are_kept_and_a_change_is_a_new_version(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    created = client.post("/api/positions", json=GERMAN_2_DAYS, headers=acme.headers).json()
    assert (created["expiry_days"], created["language"], created["version"]) == (2, "de", 1)
    assert created["reminders"][0]["after_invite_hours"] == 12
    assert created["invite_subject"] == "Ihr Screening für {position_name}"

    same = client.put(f"/api/positions/{created['id']}", json=GERMAN_2_DAYS, headers=acme.headers)
    assert same.json()["version"] == 1
    changed = client.put(
        f"/api/positions/{created['id']}",
        json={**GERMAN_2_DAYS, "expiry_days": 3, "reminders": []},
        headers=acme.headers,
    ).json()
    assert (changed["version"], changed["expiry_days"], changed["reminders"]) == (2, 3, [])


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"expiry_days": 0}, "must work for 1 to 30 days, not 0"),
        ({"expiry_days": 31}, "must work for 1 to 30 days, not 31"),
        ({"language": "it"}, "'it' is not one Truffle writes in: use en, de, fr, es"),
        ({"reminders": [{"after_invite_hours": 48}]}, "does not fall within the link's 2 day"),
        ({"reminders": [{}]}, "either after_invite_hours or before_deadline_hours"),
        ({"reminders": [{"before_deadline_hours": 6}] * 2}, "same reminder is given twice"),
        ({"invite_subject": "Hi {name}"}, "unknown placeholder {name}"),
        ({"invite_intro": "Hello {candidate_first_name"}, "brace that is not part of a"),
        ({"invite_intro": "Set {} here"}, "unknown placeholder {}"),
        ({"invite_subject": "{deadline!r}"}, "unknown placeholder {deadline}"),
        ({"invite_subject": "two\nlines"}, "one line"),
    ],
)
def test_settings_that_cannot_be_kept_are_refused_in_words(
    client: TestClient, make_workspace: MakeWorkspace, change: dict[str, object], words: str
) -> None:
    acme = make_workspace()

    refused = client.post("/api/positions", json={**GERMAN_2_DAYS, **change}, headers=acme.headers)

    assert refused.status_code == 422
    assert words in refused.json()["message"]
    assert client.get("/api/positions", headers=acme.headers).json() == []


def test_the_invite_preview_fills_the_placeholders_in_the_positions_language(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    body = {key: GERMAN_2_DAYS[key] for key in GERMAN_2_DAYS if key not in BACKEND_ENGINEER}

    shown = client.post(
        "/api/positions/invite-preview", json={**body, "name": "Backend"}, headers=acme.headers
    )
    standard = client.post(
        "/api/positions/invite-preview", json={"language": "fr"}, headers=acme.headers
    )
    refused = client.post(
        "/api/positions/invite-preview", json={"invite_intro": "{oops}"}, headers=acme.headers
    )

    assert shown.status_code == 200
    assert shown.json()["subject"] == "Ihr Screening für Backend"
    assert shown.json()["opening"].startswith("Hallo Ada, bitte antworten Sie bis ")
    assert " um " in shown.json()["deadline"]
    assert standard.json()["subject"] == "Votre questionnaire pour this position"
    assert refused.status_code == 422
    assert "unknown placeholder {oops}" in refused.json()["message"]
