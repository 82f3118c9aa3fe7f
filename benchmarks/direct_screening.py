"""The hand-written baseline of `benchmarks/load.py`: the integration of the product's shape as one
would write it directly on Temporal, and nothing more. Ashby's `assessment.start` over HTTP writes
one row and starts a workflow; the workflow emails the invite over SMTP, then posts "Started" and
the result to Ashby, each one plain activity; the candidate's Begin is an update, Submit a signal
carrying the score; the link expires after 7 days. No audit, encryption, health, outbox or
reconciler: what it costs is the work itself, on the same database, sink and sandbox.

    DIRECT_* variables (see `setting`) then: python benchmarks/direct_screening.py api|worker
"""

import asyncio
import base64
import os
import secrets
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import aiosmtplib
    import httpx
    import sqlalchemy as sa
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
    from temporalio.client import Client
    from temporalio.worker import Worker

TIMEOUT = timedelta(seconds=30)
DEADLINE = timedelta(days=7)
REPORTS = "https://truffle.example/r"


def setting(name: str) -> str:
    """DIRECT_TEMPORAL_ADDRESS, _TASK_QUEUE, _DATABASE_URL, _SMTP_PORT, _ASHBY_URL, _ASHBY_KEY,
    _TRUFFLE_KEY, _PUBLIC_URL: set by `load.py`."""
    return os.environ[f"DIRECT_{name}"]


@dataclass
class Screening:
    id: str
    email: str


@dataclass
class Update:
    id: str
    status: str
    score: int | None = None


def blob(name: str, kind: str, value: object) -> dict[str, object]:
    return {"identifier": name, "label": name.title(), "type": kind, "value": value}


def status_body(update: Update) -> dict[str, object]:
    body = {"assessment_id": update.id, "timestamp": int(time.time() * 1000),
            "assessment_status": blob("status", "string", update.status)}  # fmt: skip
    if update.score is not None:
        body["assessment_result"] = blob("score", "numeric_score", update.score)
        body["assessment_profile_url"] = blob("report", "url", f"{REPORTS}/{update.id}")
    return body


class DirectActivities:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    @activity.defn
    async def send_invite(self, screening: Screening) -> None:
        message = EmailMessage()
        message["From"], message["To"] = "screening@truffle.local", screening.email
        message["Subject"] = "Your screening"
        message.set_content(f"Open {setting('PUBLIC_URL')}/s/{screening.id} to begin.\n")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=int(setting("SMTP_PORT")))

    @activity.defn
    async def post_update(self, update: Update) -> None:
        url, auth = f"{setting('ASHBY_URL')}/assessment.update", (setting("ASHBY_KEY"), "")
        (await self.http.post(url, json=status_body(update), auth=auth)).raise_for_status()


@workflow.defn
class DirectScreening:
    def __init__(self) -> None:
        self.invited = self.begun = False
        self.score: int | None = None

    @workflow.run
    async def run(self, screening: Screening) -> None:
        await workflow.execute_activity_method(
            DirectActivities.send_invite, screening, start_to_close_timeout=TIMEOUT
        )
        self.invited = True
        try:
            await workflow.wait_condition(lambda: self.begun, timeout=DEADLINE)
            await self.post(Update(screening.id, "Started"))
            await workflow.wait_condition(lambda: self.score is not None)
        except TimeoutError:
            await self.post(Update(screening.id, "Expired"))
            return
        await self.post(Update(screening.id, "Completed", self.score))

    async def post(self, update: Update) -> None:
        await workflow.execute_activity_method(
            DirectActivities.post_update, update, start_to_close_timeout=TIMEOUT
        )

    @workflow.update
    async def begin(self) -> None:
        await workflow.wait_condition(lambda: self.invited)
        self.begun = True

    @workflow.signal
    def submit(self, score: int) -> None:
        self.score = score


SCREENINGS = sa.Table(
    "direct_screenings", sa.MetaData(),
    sa.Column("id", sa.String(36), primary_key=True), sa.Column("email", sa.String(320)),
    sa.Column("application_id", sa.String(100)), sa.Column("status", sa.String(20)),
    sa.Column("score", sa.Integer, nullable=True),
)  # fmt: skip


def insert_screening(engine: sa.Engine, screening: Screening, application_id: str) -> None:
    with engine.begin() as connection:
        connection.execute(SCREENINGS.insert().values(id=screening.id, email=screening.email,
            application_id=application_id, status="Invited"))  # fmt: skip


def update_screening(engine: sa.Engine, screening_id: str, **values: object) -> None:
    with engine.begin() as connection:
        connection.execute(
            SCREENINGS.update().where(SCREENINGS.c.id == screening_id).values(**values)
        )


def create_app(engine: sa.Engine, client: Client) -> FastAPI:
    app = FastAPI()
    expected = "Basic " + base64.b64encode(f"{setting('TRUFFLE_KEY')}:".encode()).decode()

    @app.post("/ashby/assessment.start")
    async def assessment_start(request: Request) -> JSONResponse:
        body = await request.json()
        if not secrets.compare_digest(request.headers.get("authorization", ""), expected):
            return JSONResponse({"success": False}, status_code=401)
        screening = Screening(str(uuid.uuid4()), body["candidate"]["email"])
        await asyncio.to_thread(
            insert_screening, engine, screening, body["application"]["ashby_id"]
        )
        await client.start_workflow(
            DirectScreening.run, screening, id=screening.id, task_queue=setting("TASK_QUEUE")
        )
        invited = status_body(Update(screening.id, "Invited"))
        return JSONResponse(
            {"success": True, "results": {"assessment_id": screening.id, "update_request": invited}}
        )

    @app.get("/s/{screening_id}")
    async def screener(screening_id: str) -> HTMLResponse:
        return HTMLResponse(f"<form method=post action=/s/{screening_id}/begin><button>Begin")

    @app.post("/s/{screening_id}/begin")
    async def begin(screening_id: str) -> RedirectResponse:
        await client.get_workflow_handle(screening_id).execute_update(DirectScreening.begin)
        await asyncio.to_thread(update_screening, engine, screening_id, status="Started")
        return RedirectResponse(f"/s/{screening_id}", status_code=303)

    @app.post("/s/{screening_id}/submit")
    async def submit(screening_id: str, request: Request) -> HTMLResponse:
        answers = [str(value) for value in (await request.form()).values()]
        score = round(100 * sum(bool(answer.strip()) for answer in answers) / max(1, len(answers)))
        await asyncio.to_thread(
            update_screening, engine, screening_id, status="Completed", score=score
        )
        await client.get_workflow_handle(screening_id).signal(DirectScreening.submit, score)
        return HTMLResponse("Thank you.")

    return app


def create_engine(url: str) -> sa.Engine:
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    sqlite = url.startswith("sqlite")
    engine = sa.create_engine(url, connect_args={"timeout": 30} if sqlite else {})
    if sqlite:  # as the product: an acknowledged start survives a power cut
        sa.event.listen(engine, "connect", lambda db, _: db.executescript(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"))  # fmt: skip
    SCREENINGS.metadata.create_all(engine)
    return engine


async def main(role: str) -> None:
    client = await Client.connect(setting("TEMPORAL_ADDRESS"))
    if role == "worker":
        async with httpx.AsyncClient(timeout=30) as http:
            activities = DirectActivities(http)
            await Worker(client, task_queue=setting("TASK_QUEUE"), workflows=[DirectScreening],
                activities=[activities.send_invite, activities.post_update]).run()  # fmt: skip
        return
    engine = create_engine(setting("DATABASE_URL"))
    port = int(setting("PUBLIC_URL").rsplit(":", 1)[1])
    app = create_app(engine, client)
    await uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"
                                        )).serve()  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
