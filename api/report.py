"""`GET /r/{token}`: a screening's report for the hiring team, opened from the candidate's
profile in Ashby with no sign-in (truffle/screening/report_links.py).

A token that opens nothing (wrong, replaced or expired) answers the same 404 page after the
same single lookup, whatever the reason; a report whose candidate was deleted in Ashby answers
410. Every view is in the audit trail by the screening's id, with nothing about the viewer.
The page is kept out of search engines, caches and Referer headers (api/security_headers.py).
"""

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from api import vocabulary
from api.deps import EngineDep
from api.templating import templates
from truffle.screening import report_links
from truffle.screening.report_view import report_of

router = APIRouter(include_in_schema=False)

NOT_FOUND = (
    "This report link does not open a report: it is incomplete, it was replaced by a newer "
    "one, or it has expired. Open the report again from the candidate's profile in Ashby."
)
ERASED = (
    "The candidate was deleted in Ashby, and with them everything Truffle held about their "
    "screening."
)


def _message(request: Request, heading: str, message: str, status_code: int) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "report_message.html",
        {"heading": heading, "message": message},
        status_code=status_code,
    )


@router.get("/r/{token}", response_class=HTMLResponse)
def report(
    request: Request, token: Annotated[str, Path(max_length=200)], engine: EngineDep
) -> HTMLResponse:
    with Session(engine) as session:
        screening = report_links.screening_for(session, token)
        if screening is None:
            return _message(request, "Report not found", NOT_FOUND, status.HTTP_404_NOT_FOUND)
        if screening.erased_at is not None:
            return _message(request, "Report removed", ERASED, status.HTTP_410_GONE)
        shown = report_of(session, screening)
        no_result = vocabulary.why_no_result(screening) if shown.match_score is None else ""
        report_links.record_view(session, screening)
    return templates.TemplateResponse(
        request,
        "report.html",
        {
            "report": shown,
            "status": vocabulary.screening_status(shown.status),
            "no_result": no_result,
        },
    )
