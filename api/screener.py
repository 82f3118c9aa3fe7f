"""The candidate's screener page behind the emailed link (`/s/{token}`): plain, server-rendered
HTML that works without JavaScript and on a phone, in the language of the position's version
(truffle/position/translations.py; a link that leads nowhere answers in English)."""

import logging
from pathlib import Path

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from api.deps import EngineDep, GatewayDep
from api.temporal import WorkflowUnavailableError
from truffle.contracts import ScreeningStatus, epoch_ms
from truffle.position.invite_settings import DEFAULT_LANGUAGE
from truffle.position.positions import settings_of
from truffle.position.scoring import summary_of
from truffle.position.translations import deadline_text, translations
from truffle.screening import screenings
from truffle.storage.tables import PositionVersion, Screening

router = APIRouter(prefix="/s", tags=["screener"], include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
logger = logging.getLogger("truffle.api.screener")

MAX_ANSWER_CHARACTERS = 10_000


def N_(message: str) -> str:
    return message


NOT_FOUND = (
    N_("This link does not work"),
    N_("This screening link is not valid. Check that you opened the whole link from your email."),
)
CLOSED = {
    ScreeningStatus.cancelled: (
        N_("This screening is closed"),
        N_("This screening is no longer available. The hiring team has closed it."),
    ),
    ScreeningStatus.expired: (
        N_("This screening has expired"),
        N_("The deadline for this screening has passed, so it can no longer be answered."),
    ),
}
THANKS = (
    N_("Thank you"),
    N_("Your answers were received. The hiring team will be in touch about next steps."),
)
BUSY = (
    N_("Please try again"),
    N_("Your progress is saved, but we could not finish just now. Reload this page in a minute."),
)


def _message(
    request: Request, page: tuple[str, str], status_code: int, language: str = DEFAULT_LANGUAGE
) -> HTMLResponse:
    _ = translations(language).gettext
    heading, message = page
    return templates.TemplateResponse(
        request,
        "screener_message.html",
        {"heading": _(heading), "message": _(message), "lang": language},
        status_code=status_code,
        headers={"Content-Language": language},
    )


def _language(position: PositionVersion) -> str:
    return settings_of(position).language


def _load(engine: EngineDep, token: str) -> tuple[Screening, PositionVersion] | None:
    """The screening and the position as it was sent: later edits never reach the candidate."""
    with Session(engine) as session:
        return screenings.screening_and_version_for_token(session, token)


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
    language = _language(position)
    translation = translations(language)
    return templates.TemplateResponse(
        request,
        template,
        {
            "token": token,
            "screening": screening,
            "position": position,
            "deadline": deadline_text(screening.deadline_at, language),
            "error": error,
            "answers": answers,
            "max_answer": MAX_ANSWER_CHARACTERS,
            "lang": language,
            "_": translation.gettext,
            "ngettext": translation.ngettext,
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if error else status.HTTP_200_OK,
        headers={"Content-Language": language},
    )


def _closed_page(
    request: Request, screening: Screening, language: str = DEFAULT_LANGUAGE
) -> HTMLResponse | None:
    if screening.status in CLOSED:
        return _message(request, CLOSED[screening.status], status.HTTP_410_GONE, language)
    if screening.status == ScreeningStatus.completed:
        return _message(request, THANKS, status.HTTP_200_OK, language)
    if screenings.past_deadline(screening):
        # The workflow may not have closed it yet; the deadline holds all the same.
        expired = CLOSED[ScreeningStatus.expired]
        return _message(request, expired, status.HTTP_410_GONE, language)
    return None


@router.get("/{token}", response_class=HTMLResponse)
async def screener(request: Request, token: str, engine: EngineDep) -> Response:
    found = await run_in_threadpool(_load, engine, token)
    if found is None:
        return _message(request, NOT_FOUND, status.HTTP_404_NOT_FOUND)
    screening, position = found
    return _closed_page(request, screening, _language(position)) or _page(
        request, token, screening, position
    )


@router.post("/{token}/begin")
async def begin(request: Request, token: str, engine: EngineDep, gateway: GatewayDep) -> Response:
    def load_and_start() -> tuple[tuple[Screening, PositionVersion] | None, bool]:
        with Session(engine, expire_on_commit=False) as session:
            return screenings.begin_for_token(session, token)

    found, started = await run_in_threadpool(load_and_start)
    if found is None:
        return _message(request, NOT_FOUND, status.HTTP_404_NOT_FOUND)
    screening, position = found
    closed = None if started else _closed_page(request, screening, _language(position))
    if closed is not None:
        return closed
    if started:
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
    language = _language(position)
    _ = translations(language).gettext
    if screening.status != ScreeningStatus.completed:
        closed = _closed_page(request, screening, language)
        if closed is not None:
            return closed
        form = await request.form()
        answers = [
            str(form.get(f"answer_{index}", "")).strip() for index in range(len(position.questions))
        ]
        if any(not answer for answer in answers):
            error = _("Please answer every question.")
            return _page(request, token, screening, position, error, answers)
        if any(len(answer) > MAX_ANSWER_CHARACTERS for answer in answers):
            error = _("Each answer can be at most %(count)s characters.") % {
                "count": f"{MAX_ANSWER_CHARACTERS:,}"
            }
            return _page(request, token, screening, position, error, answers)

        def complete() -> screenings.Completion | None:
            with Session(engine) as session:
                return screenings.mark_completed(session, screening, answers, position.questions)

        completion = await run_in_threadpool(complete)
        if completion is None:
            # Ashby cancelled or the deadline passed while the candidate was answering.
            refreshed = await run_in_threadpool(_load, engine, token)
            assert refreshed is not None
            return _closed_page(request, refreshed[0], language) or _message(
                request, THANKS, 200, language
            )
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
        return _message(request, BUSY, status.HTTP_503_SERVICE_UNAVAILABLE, language)
    return _message(request, THANKS, status.HTTP_200_OK, language)
