"""The `/audit` page: the audit trail as the admin reads it, newest first, a page at a time,
with the filters of the export (api/audit.py) and links to it."""

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.audit import FilterError, chosen_action, date_range
from api.deps import SessionDep
from api.pages import PageWorkspaceDep
from api.paging import list_status, page_links
from api.templating import templates
from truffle import audit
from truffle.audit import ACTION_LABELS, DateRange
from truffle.storage.keyset import BadCursorError

router = APIRouter(tags=["audit"])

ACTOR_LABELS = {
    "admin": "Admin",
    "ashby": "Ashby",
    "operator": "Operator",
    "report_link": "Report link",
}


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_page(
    request: Request,
    workspace: PageWorkspaceDep,
    session: SessionDep,
    first: Annotated[str, Query(alias="from", max_length=10)] = "",
    last: Annotated[str, Query(alias="to", max_length=10)] = "",
    action: Annotated[str, Query(max_length=48)] = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """Newest first, within whole UTC days and optionally one action, a page at a time. A
    filter that makes no range is put in words next to its field, the form keeping what was
    typed; a page link that no longer works says so above the list."""
    errors: dict[str, str] = {}
    dates, only = DateRange.ending_today(), None
    try:
        dates = date_range(first, last)
    except FilterError as error:
        errors[error.field] = error.words
    try:
        only = chosen_action(action)
    except FilterError as error:
        errors[error.field] = error.words
    page, problem = audit.Page([], None), None
    if not errors:
        try:
            page = audit.list_page(session, workspace.id, dates, only, cursor)
        except BadCursorError:
            problem = "This page link no longer works: start again from the newest events."
    query = {"from": str(dates.first), "to": str(dates.last)}
    if only is not None:
        query["action"] = only.value
    return templates.TemplateResponse(
        request,
        "audit.html",
        {
            "page": page,
            # As typed when they make no range, so the admin can correct them.
            "shown_from": first if errors else str(dates.first),
            "shown_to": last if errors else str(dates.last),
            "dates": dates,
            "errors": errors,
            "problem": problem,
            "chosen_action": only,
            "actions": ACTION_LABELS,
            "actors": ACTOR_LABELS,
            **page_links(query, page.next_cursor, cursor),
            "csv_query": urlencode({"format": "csv", **query}),
            "json_query": urlencode({"format": "json", **query}),
            "current_page": "audit",
        },
        status_code=list_status(errors, problem),
    )
