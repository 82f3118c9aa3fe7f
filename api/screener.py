"""The candidate's screener page behind the emailed link (`/s/{token}`): plain, server-rendered
HTML that works without JavaScript and on a phone."""

import logging
from pathlib import Path

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from api.deps import EngineDep, GatewayDep
from api.temporal import WorkflowUnavailableError
from truffle import screenings
from truffle.contracts import ScreeningStatus, epoch_ms
from truffle.positions import screening_version
from truffle.scoring import summary_of
from truffle.tables import PositionVersion, Screening

router = APIRouter(prefix="/s", tags=["screener"], include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
logger = logging.getLogger("truffle.api.screener")

MAX_ANSWER_CHARACTERS = 10_000
NOT_FOUND = (
    "This link does not work",
    "This screening link is not valid. Check that you opened the whole link from your email.",
)
CLOSED = {
    ScreeningStatus.cancelled: (
        "This screening is closed",
        "This screening is no longer available. The hiring team has closed it.",
    ),
    ScreeningStatus.expired: (
        "This screening has expired",
        "The deadline for this screening has passed, so it can no longer be answered.",
    ),
}
THANKS = (
    "Thank you",
    "Your answers were received. The hiring team will be in touch about next steps.",
)
BUSY = (
    "Please try again",
    "Your progress is saved, but we could not finish just now. Reload this page in a minute.",
)


def _message(request: Request, page: tuple[str, str], status_code: int) -> HTMLResponse:
    heading, message = page
    return templates.TemplateResponse(
        request,
        "screener_message.html",
        {"heading": heading, "message": message},
        status_code=status_code,
    )


def _load(engine: EngineDep, token: str) -> tuple[Screening, PositionVersion] | None:
    """The screening and the position as it was sent: later edits never reach the candidate."""
    with Session(engine) as session:
        screening = screenings.screening_for_token(session, token)
        if screening is None:
            return None
        return screening, screening_version(session, screening)


def _deadline(screening: Screening) -> str:
    return screening.deadline_at.strftime("%A %-d %B %Y, %H:%M UTC")


def _page(
    request: Request,
    token: str,
    screening: Screening,
    position: PositionVersion,
    error: str | None = None,
    answers: list[str] | None = None,
) -> HTMLResponse:
    template = (
        "screener_intro.html"
        if screening.status == ScreeningStatus.invited and answers is None
        else "screener_form.html"
    )
    return templates.TemplateResponse(
        request,
        template,
        {
            "token": token,
            "screening": screening,
            "position": position,
            "deadline": _deadline(screening),
            "error": error,
            "answers": answers,
            "max_answer": MAX_ANSWER_CHARACTERS,
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if error else status.HTTP_200_OK,
    )


def _closed_page(request: Request, screening: Screening) -> HTMLResponse | None:
    if screening.status in CLOSED:
        return _message(request, CLOSED[screening.status], status.HTTP_410_GONE)
    if screening.status == ScreeningStatus.completed:
        return _message(request, THANKS, status.HTTP_200_OK)
    if screenings.past_deadline(screening):
        # The workflow may not have closed it yet; the deadline holds all the same.
        return _message(request, CLOSED[ScreeningStatus.expired], status.HTTP_410_GONE)
    return None


@router.get("/{token}", response_class=HTMLResponse)
async def screener(request: Request, token: str, engine: EngineDep) -> Response:
    found = await run_in_threadpool(_load, engine, token)
    if found is None:
        return _message(request, NOT_FOUND, status.HTTP_404_NOT_FOUND)
    screening, position = found
    return _closed_page(request, screening) or _page(request, token, screening, position)


@router.post("/{token}/begin")
async def begin(request: Request, token: str, engine: EngineDep, gateway: GatewayDep) -> Response:
    found = await run_in_threadpool(_load, engine, token)
    if found is None:
        return _message(request, NOT_FOUND, status.HTTP_404_NOT_FOUND)
    screening, _ = found
    closed = _closed_page(request, screening)
    if closed is not None:
        return closed

    def start() -> bool:
        with Session(engine) as session:
            return screenings.mark_started(session, screening)

    if await run_in_threadpool(start):
        try:
            await gateway.candidate_started(screening.id)
        except WorkflowUnavailableError:
            logger.warning("could not signal the start of screening %s", screening.id)
    return RedirectResponse(f"/s/{token}", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/{token}/submit")
async def submit(request: Request, token: str, engine: EngineDep, gateway: GatewayDep) -> Response:
    found = await run_in_threadpool(_load, engine, token)
    if found is None:
        return _message(request, NOT_FOUND, status.HTTP_404_NOT_FOUND)
    screening, position = found
    if screening.status != ScreeningStatus.completed:
        closed = _closed_page(request, screening)
        if closed is not None:
            return closed
        form = await request.form()
        answers = [
            str(form.get(f"answer_{index}", "")).strip() for index in range(len(position.questions))
        ]
        if any(not answer for answer in answers):
            return _page(
                request, token, screening, position, "Please answer every question.", answers
            )
        if any(len(answer) > MAX_ANSWER_CHARACTERS for answer in answers):
            error = f"Each answer can be at most {MAX_ANSWER_CHARACTERS:,} characters."
            return _page(request, token, screening, position, error, answers)

        def complete() -> screenings.Completion | None:
            with Session(engine) as session:
                return screenings.mark_completed(session, screening, answers, position.questions)

        completion = await run_in_threadpool(complete)
        if completion is None:
            # Ashby cancelled or the deadline passed while the candidate was answering.
            refreshed = await run_in_threadpool(_load, engine, token)
            assert refreshed is not None
            return _closed_page(request, refreshed[0]) or _message(request, THANKS, 200)
        completed_at, result = completion.completed_at, completion.result
    else:
        assert screening.completed_at is not None
        completed_at, result = screening.completed_at, screening.result
    # Sent again on a repeated submit, so a signal lost the first time still arrives; the
    # workflow ignores a second one.
    try:
        await gateway.candidate_completed(
            screening.id, epoch_ms(completed_at), summary_of(result) if result else None
        )
    except WorkflowUnavailableError:
        logger.warning("could not signal the completion of screening %s", screening.id)
        return _message(request, BUSY, status.HTTP_503_SERVICE_UNAVAILABLE)
    return _message(request, THANKS, status.HTTP_200_OK)
