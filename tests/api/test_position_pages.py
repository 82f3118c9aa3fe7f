"""The Positions pages as plain HTML forms: create, edit (a new version only on a change),
rows added and removed without JavaScript, errors next to their fields, the server-side preview,
deactivation with a confirm step, and the CSRF token on every post."""

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from tests.utils.factories import make_position, make_workspace, open_screening
from tests.utils.workspaces import MakeWorkspace
from truffle.security.secrets import KeyRing
from truffle.settings import Settings


@pytest.fixture
def console(settings: Settings) -> Iterator[TestClient]:
    """The admin\'s browser, played by a TestClient (cookies kept, redirects not followed)."""
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


def sign_in(console: TestClient, admin_token: str) -> str:
    """Signs in; returns the CSRF token the pages carry."""
    assert console.post("/signin", data={"admin_token": admin_token}).status_code == 303
    page = console.get("/positions")
    assert page.status_code == 200
    match = re.search(
        r'name="csrf_token" value="([^"]+)"|name="csrf-token" content="([^"]+)"', page.text
    )
    assert match is not None
    return match.group(1) or match.group(2)


def one_question(csrf: str, **overrides: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "name": "Backend Engineer",
        "description": "Python services",
        "q-0-prompt": "How do you make a retried operation safe?",
        "q-0-c-0-label": "Idempotency",
        "q-0-c-0-keywords": "idempotent, idempotency",
        "q-0-c-0-weight": "2",
        "q-0-c-1-label": "Dedup keys",
        "q-0-c-1-keywords": "dedupe key",
        "q-0-c-1-weight": "1",
        "q-0-sample": "",
        **overrides,
    }


def test_signed_out_the_pages_ask_to_sign_in(console: TestClient) -> None:
    for path in ("/positions", "/positions/new"):
        response = console.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/signin")


def test_create_then_edit_makes_version_2_and_says_so(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    csrf = sign_in(console, make_workspace().admin_token)
    assert 'href="/positions" aria-current="page"' in console.get("/positions").text

    created = console.post("/positions/new", data={**one_question(csrf), "action": "save"})
    assert created.status_code == 303
    listed = console.get(created.headers["location"]).text
    assert "Created “Backend Engineer”, version 1." in listed
    position_id = re.search(r'href="/positions/([0-9a-f-]{36})"', listed)
    assert position_id is not None
    edit_path = f"/positions/{position_id.group(1)}"
    form = console.get(edit_path).text
    assert 'value="idempotent, idempotency"' in form
    assert 'name="based_on_version" value="1"' in form

    unchanged = console.post(
        edit_path, data={**one_question(csrf), "based_on_version": "1", "action": "save"}
    )
    assert "it is still version 1" in console.get(unchanged.headers["location"]).text

    edited = console.post(
        edit_path,
        data={
            **one_question(csrf, **{"q-0-c-1-weight": "3"}),
            "based_on_version": "1",
            "action": "save",
        },
    )
    assert edited.status_code == 303
    notice = console.get(edited.headers["location"]).text
    assert "Saved “Backend Engineer” as version 2." in notice
    assert '<td data-label="Version" class="numeric">2</td>' in notice

    stale = console.post(
        edit_path,
        data={**one_question(csrf, name="Other"), "based_on_version": "1", "action": "save"},
    )
    assert stale.status_code == 422
    assert "it is now version 2" in stale.text
    assert 'name="based_on_version" value="2"' in stale.text


def test_the_notice_says_open_screenings_keep_their_version(
    console: TestClient, engine: sa.Engine, settings: Settings
) -> None:
    workspace, token = make_workspace(engine)
    position = make_position(engine, workspace)
    open_screening(engine, KeyRing(settings.secret_keys()), workspace, position)
    csrf = sign_in(console, token)
    edited = console.post(
        f"/positions/{position.id}",
        data={**one_question(csrf), "based_on_version": "1", "action": "save"},
    )
    assert (
        "1 open screening was sent with an older version: it keeps the version it was sent with."
        in (console.get(edited.headers["location"]).text)
    )


def test_rows_are_added_and_removed_by_submit_buttons_without_saving(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    csrf = sign_in(console, make_workspace().admin_token)
    added = console.post("/positions/new", data={**one_question(csrf), "action": "add-criterion:0"})
    assert added.status_code == 200
    assert 'id="q-0-c-2-label" name="q-0-c-2-label" autofocus' in added.text
    question = console.post("/positions/new", data={**one_question(csrf), "action": "add-question"})
    assert 'id="q-1-prompt" name="q-1-prompt" autofocus' in question.text
    removed = console.post(
        "/positions/new", data={**one_question(csrf), "action": "remove-criterion:0:0"}
    )
    assert 'value="Dedup keys"' in removed.text
    assert 'value="Idempotency"' not in removed.text
    assert "q-0-c-1-label" not in removed.text
    assert "No positions yet" in console.get("/positions").text


def test_errors_are_in_words_next_to_their_fields_with_422(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    csrf = sign_in(console, make_workspace().admin_token)
    response = console.post(
        "/positions/new",
        data={
            **one_question(
                csrf, name="  ", **{"q-0-c-1-keywords": " , ", "q-0-c-0-weight": "heavy"}
            ),
            "action": "save",
        },
    )
    assert response.status_code == 422
    page = response.text
    assert 'id="name" name="name" aria-invalid="true" aria-describedby="name-error"' in page
    assert '<p class="field-error" id="name-error">Enter a name for the position.</p>' in page
    assert '<p class="field-error" id="q-0-c-1-keywords-error">Enter at least one keyword' in page
    assert '<p class="field-error" id="q-0-c-0-weight-error">Enter the weight as a number' in page
    assert 'value="heavy"' in page
    no_questions = console.post(
        "/positions/new",
        data={"csrf_token": csrf, "name": "Empty", "description": "", "action": "save"},
    )
    assert '<p class="field-error" id="questions-error">Add at least one question.</p>' in (
        no_questions.text
    )
    assert "No positions yet" in console.get("/positions").text


def test_the_preview_button_scores_the_sample_answers_on_the_server(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    csrf = sign_in(console, make_workspace().admin_token)
    response = console.post(
        "/positions/new",
        data={**one_question(csrf, **{"q-0-sample": "Make it idempotent."}), "action": "preview"},
    )
    assert response.status_code == 200
    assert '<div id="preview-result" aria-live="polite">' in response.text
    assert "<strong>67/100 · Good</strong>" in response.text
    assert "Question 1: 67/100 · met Idempotency · missed Dedup keys" in response.text
    assert "Make it idempotent.</textarea>" in response.text


def test_deactivate_asks_first_then_takes_it_off_the_list_for_ashby(
    console: TestClient, engine: sa.Engine
) -> None:
    workspace, token = make_workspace(engine)
    position = make_position(engine, workspace)
    csrf = sign_in(console, token)
    assert (
        f'href="/positions/{position.id}/deactivate"'
        in console.get(f"/positions/{position.id}").text
    )
    confirm = console.get(f"/positions/{position.id}/deactivate")
    assert "Ashby will no longer list it" in confirm.text
    refused = console.post(f"/positions/{position.id}/deactivate", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    done = console.post(f"/positions/{position.id}/deactivate", data={"csrf_token": csrf})
    assert done.status_code == 303
    listed = console.get(done.headers["location"]).text
    assert "Deactivated “Backend Engineer”: Ashby no longer lists it." in listed
    assert 'data-status="deactivated">Deactivated</span>' in listed

    edit = console.get(f"/positions/{position.id}").text
    assert f'action="/positions/{position.id}/reactivate"' in edit
    back = console.post(f"/positions/{position.id}/reactivate", data={"csrf_token": csrf})
    assert back.status_code == 303
    listed = console.get(back.headers["location"]).text
    assert "Reactivated “Backend Engineer”: Ashby lists it again, as version 1." in listed


def test_forms_without_the_csrf_token_change_nothing(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    csrf = sign_in(console, make_workspace().admin_token)
    data = {**one_question(csrf), "csrf_token": "", "action": "save"}
    response = console.post("/positions/new", data=data)
    assert response.status_code == 403
    assert "No positions yet" in console.get("/positions").text


def test_another_workspaces_position_pages_are_404(console: TestClient, engine: sa.Engine) -> None:
    globex, _ = make_workspace(engine, "Globex")
    secret = make_position(engine, globex, "Globex Secret Position")
    _, acme_token = make_workspace(engine, "Acme")
    csrf = sign_in(console, acme_token)
    for method, path, data in (
        ("GET", f"/positions/{secret.id}", None),
        ("POST", f"/positions/{secret.id}", {**one_question(csrf), "action": "save"}),
        ("GET", f"/positions/{secret.id}/deactivate", None),
        ("POST", f"/positions/{secret.id}/deactivate", {"csrf_token": csrf}),
        ("POST", f"/positions/{secret.id}/reactivate", {"csrf_token": csrf}),
    ):
        response = console.request(method, path, data=data)
        assert response.status_code == 404, path
        assert "Globex" not in response.text


def full_form(csrf: str, questions: int, criteria: int) -> dict[str, str]:
    """The form as the page would post it with this many questions and criteria each."""
    form = {"csrf_token": csrf, "name": "Backend Engineer", "description": ""}
    for q in range(questions):
        form[f"q-{q}-prompt"] = f"Question {q + 1}?"
        form[f"q-{q}-sample"] = ""
        for c in range(criteria):
            form |= {
                f"q-{q}-c-{c}-label": f"Criterion {c + 1}",
                f"q-{q}-c-{c}-keywords": "word",
                f"q-{q}-c-{c}-weight": "1",
            }
    return form


def test_without_javascript_questions_and_criteria_stop_at_the_apis_limits(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    csrf = sign_in(console, make_workspace().admin_token)
    at_limits = full_form(csrf, questions=50, criteria=20)

    shown = console.post("/positions/new", data={**at_limits, "action": "remove-question:49"})
    assert "Add a question" in shown.text  # below the limit the button is back
    page = console.post("/positions/new", data={**at_limits, "action": "preview"})
    assert page.status_code == 200
    assert "Add a question</button>" not in page.text
    assert "A position has at most 50 questions." in page.text
    assert "Add a criterion</button>" not in page.text
    assert page.text.count("A question has at most 20 criteria.") == 50

    # A post from an older page (or by hand) asking for one more gets no row and a reason.
    more_questions = console.post("/positions/new", data={**at_limits, "action": "add-question"})
    more_criteria = console.post("/positions/new", data={**at_limits, "action": "add-criterion:3"})
    assert more_questions.status_code == more_criteria.status_code == 422
    assert "q-50-prompt" not in more_questions.text
    assert "At most 50 questions." in more_questions.text
    assert "q-3-c-20-label" not in more_criteria.text
    assert "At most 20 criteria." in more_criteria.text

    saved = console.post("/positions/new", data={**at_limits, "action": "save"})
    assert saved.status_code == 303


def test_a_post_past_the_limits_is_cut_to_them_and_not_saved(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    csrf = sign_in(console, make_workspace().admin_token)
    too_many = full_form(csrf, questions=60, criteria=2) | full_form(csrf, questions=1, criteria=25)

    page = console.post("/positions/new", data={**too_many, "action": "save"})

    assert page.status_code == 422
    assert "at most 50 questions and 20 criteria a question" in page.text
    assert "q-49-prompt" in page.text
    assert "q-50-prompt" not in page.text
    assert "q-0-c-19-label" in page.text
    assert "q-0-c-20-label" not in page.text
    assert console.get("/positions").text.count("Backend Engineer") == 0


GERMAN_2_DAYS = {
    "expiry_days": "2",
    "after_invite": "12",
    "before_deadline": "",
    "language": "de",
    "invite_subject": "Ihr Screening für {position_name}",
    "invite_intro": "Hallo {candidate_first_name}, bitte bis {deadline} <antworten>.",
}


def test_the_invite_settings_are_saved_from_the_form_and_previewed_as_plain_text(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    csrf = sign_in(console, acme.admin_token)

    created = console.post(
        "/positions/new", data={**one_question(csrf, **GERMAN_2_DAYS), "action": "save"}
    )

    assert created.status_code == 303
    [position] = console.get("/api/positions", headers=acme.headers).json()
    assert (position["expiry_days"], position["language"]) == (2, "de")
    assert position["reminders"] == [{"after_invite_hours": 12, "before_deadline_hours": None}]
    page = console.get(f"/positions/{position['id']}").text
    assert 'id="expiry_days" name="expiry_days" value="2"' in page
    assert '<option value="de" selected>Deutsch</option>' in page
    assert '<span id="invite-preview-subject">Ihr Screening für Backend Engineer</span>' in page
    assert "Hallo Ada, bitte bis " in page
    assert "bitte bis " in page.split('id="invite-preview-opening"')[1]
    assert "<antworten>" not in page


def test_invite_settings_that_cannot_be_kept_are_put_in_words(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    csrf = sign_in(console, make_workspace().admin_token)

    typed = console.post(
        "/positions/new",
        data={**one_question(csrf, expiry_days="soon", after_invite="a day"), "action": "save"},
    )
    unknown = console.post(
        "/positions/new",
        data={**one_question(csrf, invite_subject="Hi {name}"), "action": "save"},
    )

    assert typed.status_code == 422
    assert '<p class="field-error" id="expiry_days-error">Enter the days as a whole number' in (
        typed.text
    )
    assert '<p class="field-error" id="after_invite-error">Enter hours as whole numbers' in (
        typed.text
    )
    assert unknown.status_code == 422
    assert "unknown placeholder {name}" in unknown.text
    assert 'id="invite-preview-problem"' in unknown.text
