"""`truffle-ashby demo`: the help article's whole story, played against a running stack
(`make run`), with the Ashby sandbox in Ashby's part. Each step is printed in plain words; the
command exits non-zero at the first step that does not happen."""

import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from tools.ashby_sandbox.client import SandboxClient, application_event_data
from truffle.ashby.webhooks import WEBHOOK_TYPES
from truffle.settings import Settings
from truffle.storage.db import create_db_engine, require_schema_at_head, session_scope
from truffle.storage.tables import Plan
from truffle.workspaces import create_workspace, issue_admin_token

WAIT_SECONDS = 60.0
T = TypeVar("T")

QUESTIONS = [
    {
        "prompt": "How do you make an operation that may be retried safe?",
        "criteria": [
            {"label": "Idempotency", "keywords": ["idempotent", "idempotency"], "weight": 3},
            {"label": "Dedup keys", "keywords": ["idempotency key", "dedupe"], "weight": 1},
        ],
    },
    {
        "prompt": "How would you test a reminder that fires after 48 hours?",
        "criteria": [{"label": "Time skipping", "keywords": ["time skipping"], "weight": 2}],
    },
]
ANSWERS = [
    "I make the handler idempotent and store an idempotency key per request.",
    "With Temporal's time skipping test server, so 48 hours pass in milliseconds.",
]


class DemoFailedError(Exception):
    """A step of the story did not happen."""


@dataclass
class Demo:
    api_url: str
    sandbox_url: str
    mail_url: str
    settings: Settings
    out: Callable[[str], None] = print

    def __post_init__(self) -> None:
        self.http = httpx.Client(timeout=30)
        self.ashby = SandboxClient(self.sandbox_url)
        self.admin_headers: dict[str, str] = {}

    # Plumbing

    def step(self, text: str) -> None:
        self.out(f"\n→ {text}")

    def said(self, text: str) -> None:
        self.out(f"  {text}")

    def expect(self, response: httpx.Response, status: int = 200) -> Any:
        """The JSON of a reply that must have `status`."""
        self.expect_status(response, status)
        try:
            return response.json()
        except ValueError:
            raise DemoFailedError(f"{response.request.url.path} did not answer JSON") from None

    def expect_status(self, response: httpx.Response, status: int = 200) -> None:
        if response.status_code != status:
            raise DemoFailedError(
                f"{response.request.method} {response.request.url.path} answered "
                f"{response.status_code}: {response.text[:300]}"
            )

    def wait_for(self, what: str, probe: Callable[[], T | None]) -> T:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            found = probe()
            if found is not None:
                return found
            time.sleep(0.3)
        raise DemoFailedError(f"{what} did not happen within {WAIT_SECONDS:.0f} s")

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(
            method, f"{self.api_url}{path}", headers=self.admin_headers, **kwargs
        )

    def ashby_calls(self, method: str, body: dict[str, Any] | None = None) -> Any:
        reply = self.ashby.call_partner(method, body)
        if reply["status_code"] != 200:
            raise DemoFailedError(f"Truffle answered Ashby's {method} with {reply}")
        return reply["body"]

    def card(self) -> dict[str, Any]:
        card: dict[str, Any] = self.expect(self.api("GET", "/api/integrations/ashby"))
        return card

    def card_reads(self, status: str) -> dict[str, Any]:
        card = self.wait_for(
            f"the card turning {status}",
            lambda: found if (found := self.card())["status"] == status else None,
        )
        self.said(f"The Ashby card: {card['label']} — {card['message']}")
        return card

    def updates(self, assessment_id: str, *, with_invited: bool = False) -> list[dict[str, Any]]:
        """What Ashby holds for the assessment, oldest first (the "Invited · expires" status
        that comes before the rest only when asked)."""
        return [
            update
            for update in self.ashby.updates(assessment_id)
            if with_invited
            or not str((update["body"].get("assessment_status") or {}).get("value", "")).startswith(
                "Invited"
            )
        ]

    # The story

    def run(self) -> None:
        self.create_workspace()
        position_id = self.create_position()
        self.a_key_without_the_permission_is_refused()
        ashby_key = self.create_ashby_key()
        truffle_key = self.connect(ashby_key["key"])
        self.paste_into_ashby(truffle_key)
        self.ashby_lists_positions()
        first = self.screen_a_candidate(position_id, "Ada", "Lovelace")
        self.scores_land(first)
        self.the_hiring_team_opens_the_report(first)
        self.start_and_cancel(position_id)
        self.a_german_position_resent_and_extended()
        broken = self.break_the_ashby_key(ashby_key, position_id)
        self.reconnect_and_recover(broken)
        self.archive_in_ashby(position_id)
        self.out("\n✓ The whole story happened.")

    def create_workspace(self) -> None:
        self.step("Creating a Truffle workspace on a paid plan")
        engine = create_db_engine(self.settings.database_url)
        try:
            require_schema_at_head(engine)
            with session_scope(engine) as session:
                workspace = create_workspace(
                    session, f"Demo story {time.strftime('%H:%M:%S')}", Plan.paid
                )
                issued = issue_admin_token(session, workspace)
        finally:
            engine.dispose()
        self.admin_headers = {"Authorization": f"Bearer {issued.admin_token}"}
        self.said(f"Workspace {issued.workspace_id} is ready; its admin signs in to Truffle.")

    def create_position(self) -> str:
        self.step("The admin creates a Truffle position with two screening questions")
        position = self.expect(
            self.api(
                "POST",
                "/api/positions",
                json={
                    "name": "Backend Engineer",
                    "description": "Durable workflows",
                    "questions": QUESTIONS,
                },
            ),
            201,
        )
        self.said(f"Position “{position['name']}” is assessment type {position['id']}.")
        position_id: str = position["id"]
        return position_id

    def create_ashby_key(self) -> dict[str, str]:
        self.step("In Ashby: Admin → Integrations → API Keys → + New, a key for Truffle")
        key = self.ashby.create_key()
        self.said("Ashby shows the key once; the admin copies it.")
        return key

    def a_key_without_the_permission_is_refused(self) -> None:
        self.step("First the admin pastes a key made without the candidatesWrite permission")
        key = self.ashby.create_key(scopes=("apiKeysRead",))
        refused = self.expect(
            self.api("POST", "/api/integrations/ashby/connect", json={"ashby_api_key": key["key"]}),
            422,
        )
        if "candidatesWrite" not in refused["message"]:
            raise DemoFailedError(f"the refusal does not name the permission: {refused}")
        self.said(f"Refused (422): “{refused['message']}”")

    def connect(self, ashby_key: str) -> str:
        self.step("In Truffle: Integrations → Ashby → Connect, paste the Ashby API key")
        reply = self.expect(
            self.api("POST", "/api/integrations/ashby/connect", json={"ashby_api_key": ashby_key})
        )
        truffle_key: str = reply["truffle_key"]
        self.said(f"Ashby connected. Your Truffle key (shown once): {truffle_key[:12]}…")
        self.said(f"Partner base URL for Ashby: {reply['card']['partner_base_url']}")
        self.card_reads("action_needed")
        return truffle_key

    def paste_into_ashby(self, truffle_key: str) -> None:
        self.step("In Ashby: Admin → Integrations → Integrations → Truffle, paste the Truffle key")
        self.ashby.configure_partner(self.card()["partner_base_url"], truffle_key)
        self.said("Saved in Ashby.")

    def ashby_lists_positions(self) -> None:
        self.step("Ashby lists Truffle's positions for the interview plan's Assessment Type")
        listed = self.ashby_calls("assessment.list")
        names = ", ".join(item["name"] for item in listed["results"])
        self.said(f"Ashby sees: {names}")
        self.card_reads("connected")

    def start(self, position_id: str, first: str, last: str) -> tuple[str, str]:
        assessment_id, email, _ = self.start_application(position_id, first, last)
        return assessment_id, email

    def start_application(self, position_id: str, first: str, last: str) -> tuple[str, str, str]:
        """Ashby's assessment.start: the assessment id, the candidate's email and the
        application's Ashby id."""
        email = f"{first.lower()}.{uuid.uuid4().hex[:6]}@candidates.example"
        application_id = uuid.uuid4().hex
        body = {
            "assessment_type_id": position_id,
            "candidate": {
                "ashby_id": uuid.uuid4().hex,
                "first_name": first,
                "last_name": last,
                "email": email,
                "ashby_profile_url": "https://app.ashbyhq.com/candidates/demo",
            },
            "application": {"ashby_id": application_id, "status": "Active"},
            "job": {
                "ashby_id": "job-demo",
                "name": "Backend Engineer",
                "ashby_job_url": "https://app.ashbyhq.com/jobs/demo",
            },
        }
        reply = self.ashby_calls("assessment.start", body)
        assessment_id: str = reply["results"]["assessment_id"]
        status = reply["results"]["update_request"]["assessment_status"]["value"]
        self.said(f"Truffle answered with assessment {assessment_id}, status “{status}”.")
        return assessment_id, email, application_id

    def screen_a_candidate(self, position_id: str, first: str, last: str) -> str:
        self.step(f"A recruiter sends the Truffle screening to {first} {last} from Ashby")
        assessment_id, email = self.start(position_id, first, last)
        self.candidate_answers(email)
        return assessment_id

    def screener_link(self, email: str) -> str:
        def link() -> str | None:
            messages = self.expect(
                self.http.get(f"{self.mail_url}/api/messages", params={"to": email})
            )["messages"]
            if not messages:
                return None
            match = re.search(r"https?://\S+/s/\S+", messages[0]["text"])
            return match.group(0) if match else None

        return self.wait_for("the invite email", link)

    def candidate_answers(self, email: str) -> None:
        self.step("The candidate's email arrives with the screener link")
        screener = self.screener_link(email)
        self.said(f"Subject and link received: {screener.split('/s/')[0]}/s/…")
        self.step("The candidate begins, answers both questions and submits")
        with httpx.Client(timeout=30, follow_redirects=True) as browser:
            self.expect_status(browser.get(screener))
            self.expect_status(browser.post(f"{screener}/begin"))
            done = browser.post(
                f"{screener}/submit",
                data={f"answer_{index}": answer for index, answer in enumerate(ANSWERS)},
            )
            if "Your answers were received" not in done.text:
                raise DemoFailedError("the screener page did not accept the answers")
        self.said("“Thank you. Your answers were received.”")

    def scores_land(self, assessment_id: str) -> None:
        self.step("Status and scores post back to the candidate's Ashby profile")
        updates = self.wait_for(
            "the result reaching Ashby",
            lambda: found if len(found := self.updates(assessment_id)) >= 2 else None,
        )
        [invited] = [u for u in self.updates(assessment_id, with_invited=True) if u not in updates]
        result = updates[-1]["body"]
        blobs = {b["identifier"]: b for b in result["metadata"]}
        tier = blobs["truffle_tier"]["value"]
        self.said(
            f"After the invite, Ashby held “{invited['body']['assessment_status']['value']}”;"
        )
        self.said(
            f"then “{updates[0]['body']['assessment_status']['value']}”, then the result: match "
            f"score {result['assessment_result']['value']}/{blobs['truffle_max_score']['value']}, "
            f"tier {tier}"
        )
        criteria = [b for name, b in blobs.items() if name.startswith("truffle_criterion_")]
        if not criteria:
            raise DemoFailedError("the result carries no score per criterion")
        for criterion in criteria:
            self.said(
                f"  {criterion['label']}: {criterion['value']}/100 "
                f"(filterable in Ashby as {criterion['identifier']})"
            )

    def the_hiring_team_opens_the_report(self, assessment_id: str) -> None:
        self.step("A hiring manager clicks “Truffle report” on the profile in Ashby: no sign-in")
        result = self.updates(assessment_id)[-1]["body"]
        report_url = result["assessment_profile_url"]["value"]
        with httpx.Client(timeout=30) as stranger:  # no Truffle session, no token
            page = stranger.get(report_url)
            self.expect_status(page)
            if "Ada Lovelace" not in page.text or "match-score" not in page.text:
                raise DemoFailedError("the report does not show the candidate and the score")
            self.said("The report shows Ada's answers, each criterion's score and the timeline.")
            self.step("The admin replaces the report link (it was forwarded too widely)")
            replaced = self.expect(self.api("POST", f"/api/screenings/{assessment_id}/report-link"))
            self.said(f"A new link, shown once; {replaced['message']}")
            if stranger.get(report_url).status_code != 404:
                raise DemoFailedError("the old report link still opens the report")
            updates = self.wait_for(
                "Ashby getting the new report link",
                lambda: found if len(found := self.updates(assessment_id)) >= 3 else None,
            )
            new_url = updates[-1]["body"]["assessment_profile_url"]["value"]
            if new_url != replaced["report_url"] or stranger.get(new_url).status_code != 200:
                raise DemoFailedError("Ashby did not get a working new report link")
            self.said("The old link answers “Report not found”; Ashby holds the new one.")

    def a_german_position_resent_and_extended(self) -> None:
        self.step("The admin adds a position in German whose link works for 2 days")
        position = self.expect(
            self.api(
                "POST",
                "/api/positions",
                json={
                    "name": "Backend-Entwickler",
                    "description": "Dauerhafte Workflows",
                    "questions": QUESTIONS,
                    "expiry_days": 2,
                    "reminders": [{"after_invite_hours": 12}, {"before_deadline_hours": 6}],
                    "language": "de",
                    "invite_subject": "{candidate_first_name}, Ihr Screening für {position_name}",
                },
            ),
            201,
        )
        self.said(
            f"“{position['name']}”: {position['expiry_days']} days, reminders 12 h after the "
            "invite and 6 h before the deadline, in German."
        )
        self.step("A recruiter sends it to Emmy Noether from Ashby; her invite is in German")
        assessment_id, email = self.start(position["id"], "Emmy", "Noether")
        first_link = self.screener_link(email)
        [invite] = self.expect(
            self.http.get(f"{self.mail_url}/api/messages", params={"to": email})
        )["messages"]
        self.said(f"Subject: “{invite['subject']}”")
        invited = self.wait_for(
            "the Invited status reaching Ashby",
            lambda: found[0] if (found := self.updates(assessment_id, with_invited=True)) else None,
        )
        self.said(f"Ashby shows “{invited['body']['assessment_status']['value']}”.")

        self.step("She lost the email: the admin sends the invite again (a new link)")
        resent = self.expect(self.api("POST", f"/api/screenings/{assessment_id}/resend"))
        self.said(resent["message"])

        def second_link() -> str | None:
            messages = self.expect(
                self.http.get(f"{self.mail_url}/api/messages", params={"to": email})
            )["messages"]
            return self.screener_link(email) if len(messages) >= 2 else None

        new_link = self.wait_for("the second invite", second_link)
        self.expect_status(self.http.get(first_link), 404)
        self.expect_status(self.http.get(new_link))
        self.said("The first link now answers 404; the new one opens her screening in German.")

        self.step("She asks for more time: the admin extends the deadline by 3 days")
        extended = self.expect(
            self.api("POST", f"/api/screenings/{assessment_id}/extend", json={"days": 3})
        )
        self.said(f"{extended['message']} New deadline: {extended['deadline_at']}.")
        moved = self.wait_for(
            "Ashby hearing the new deadline",
            lambda: (
                found[-1]
                if len(found := self.updates(assessment_id, with_invited=True)) >= 2
                else None
            ),
        )
        self.said(f"Ashby now shows “{moved['body']['assessment_status']['value']}”.")

    def start_and_cancel(self, position_id: str) -> None:
        self.step(
            "Ashby sends a second screening by itself as Alan enters the stage (“Automate on "
            "stage entry”), then the recruiter cancels it"
        )
        assessment_id, _ = self.start(position_id, "Alan", "Turing")
        cancelled = self.ashby_calls("assessment.cancel", {"assessment_id": assessment_id})
        if not cancelled.get("success"):
            raise DemoFailedError(f"cancel was refused: {cancelled}")

        def disqualified() -> dict[str, Any] | None:
            screenings = self.expect(self.api("GET", "/api/screenings"))
            record = next(item for item in screenings if item["id"] == assessment_id)
            return record if record["application_status"] == "disqualified" else None

        self.wait_for("the Truffle application being disqualified", disqualified)
        self.said("The candidate's Truffle application is disqualified and the link is dead.")

    def break_the_ashby_key(self, ashby_key: dict[str, str], position_id: str) -> str:
        self.step("Someone deactivates the Ashby key: Ashby now answers 401")
        self.ashby.inject_fault(ashby_key["id"], "unauthorized", count=10_000)
        assessment_id = self.screen_a_candidate(position_id, "Grace", "Hopper")
        self.step("Truffle holds the result and the card turns red")
        self.card_reads("action_needed")
        if self.updates(assessment_id):
            raise DemoFailedError("an update reached Ashby with a rejected key")
        return assessment_id

    def reconnect_and_recover(self, held_assessment: str) -> None:
        self.step("The admin creates a new Ashby key and clicks Reconnect")
        new_key = self.create_ashby_key()
        reply = self.expect(
            self.api(
                "POST", "/api/integrations/ashby/reconnect", json={"ashby_api_key": new_key["key"]}
            )
        )
        self.said(f"A brand-new Truffle key: {reply['truffle_key'][:12]}… (the old one is dead)")
        self.paste_into_ashby(reply["truffle_key"])
        self.step("Ashby calls Truffle with the new key; the held results flow")
        self.ashby_calls("assessment.list")
        self.wait_for(
            "the held result reaching Ashby",
            lambda: found if len(found := self.updates(held_assessment)) >= 2 else None,
        )
        self.said("Grace Hopper's status and scores are now in Ashby.")
        self.card_reads("connected")

    def archive_in_ashby(self, position_id: str) -> None:
        self.step("The admin sets up Ashby's webhooks: Integrations → Ashby → Set up webhooks")
        reply = self.expect(self.api("POST", "/api/integrations/ashby/webhooks"))
        self.said(f"Request URL {reply['url']}, and a secret token shown once.")
        if reply["registered"]:
            self.said("Truffle registered them in Ashby itself: " + ", ".join(reply["registered"]))
        else:
            self.said(f"Truffle could not register them ({reply['problem']}), so the admin")
            self.said("adds them in Ashby: Admin → Integrations → Webhooks, one per type.")
            for webhook_type in WEBHOOK_TYPES:
                added = self.ashby.add_webhook(webhook_type, reply["url"], reply["secret"])
                if not added["enabled"]:
                    raise DemoFailedError(f"Ashby's ping of the {webhook_type} webhook failed")
        self.step("A recruiter sends a screening to Katherine Johnson from Ashby")
        assessment_id, email, application_id = self.start_application(
            position_id, "Katherine", "Johnson"
        )
        link = self.screener_link(email)
        self.said("Her invite is out and the link works.")
        self.step("The recruiter archives her application in Ashby; Ashby sends its webhook")
        self.ashby.send_webhook(
            "applicationUpdate", application_event_data(application_id, "Archived")
        )
        self.step("Truffle stops at once: the link closes, and Ashby hears why")

        def closed_page() -> str | None:
            page = self.http.get(link)
            closed = page.status_code == 410 and "This screening is closed" in page.text
            return page.text if closed else None

        self.wait_for("the screener link answering “This screening is closed”", closed_page)
        updates = self.wait_for(
            "the reason reaching Ashby",
            lambda: found if (found := self.updates(assessment_id)) else None,
        )
        reason = updates[-1]["body"]["cancelled_reason"]["value"]
        if reason != "Application archived in Ashby":
            raise DemoFailedError(f"Ashby holds the reason {reason!r}")
        self.said(f"“This screening is closed” for Katherine; Ashby holds “{reason}”.")

        def ended() -> dict[str, Any] | None:
            screenings = self.expect(self.api("GET", "/api/screenings"))
            record = next(item for item in screenings if item["id"] == assessment_id)
            # Settled: her workflow has ended, and its reminder timers with it.
            return record if record["status"] == "cancelled" and record["settled"] else None

        self.wait_for("her screening's workflow ending", ended)
        self.said("No reminder will follow: her screening's workflow has ended.")


def run_demo(api_url: str, sandbox_url: str, mail_url: str) -> int:
    demo = Demo(api_url.rstrip("/"), sandbox_url.rstrip("/"), mail_url.rstrip("/"), Settings())
    try:
        demo.run()
    except (DemoFailedError, httpx.HTTPError, KeyError, StopIteration) as error:
        print(f"\n✗ The demo stopped: {error}", file=sys.stderr)
        return 1
    return 0
