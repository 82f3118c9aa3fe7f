"""The audit trail's export, `GET /api/audit?format=csv|json&from=YYYY-MM-DD&to=YYYY-MM-DD`,
and the filters it shares with the `/audit` page (api/audit_pages.py).

Dates are whole UTC days, both included. Without dates, the last 30 days (today included);
with only `from`, from then to today; with only `to`, the 30 days ending then. The export is
streamed oldest first, a chunk of rows at a time, so its size never weighs on the API.
"""

import csv
import io
import json
from collections.abc import Iterator
from datetime import date
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from api.deps import EngineDep, WorkspaceDep
from truffle import audit
from truffle.audit import AuditAction, DateRange
from truffle.storage.tables import AuditEvent

router = APIRouter(tags=["audit"])

COLUMNS = (
    "at",
    "actor",
    "actor_id",
    "action",
    "screening_id",
    "position_id",
    "ashby_application_id",
    "webhook_action_id",
    "webhook_action",
    "outcome",
    "request_id",
)
# A spreadsheet runs a cell that starts with one of these as a formula; Ashby's ids are
# Ashby's to choose, so such a cell is written as text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FLUSH_CHARS = 64 * 1024


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"


# Far enough from `date.min` and `date.max` that a range's ends can be computed.
EARLIEST, LATEST = date(1970, 1, 1), date(9999, 12, 30)


class FilterError(ValueError):
    """A filter that makes no range or names no action: `field` is the form field it belongs
    to, `message` what the API answers and `words` what the page says next to the field."""

    def __init__(self, field: str, message: str, words: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.words = words


def _date(text: str, name: str) -> date | None:
    if not text:
        return None
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or not EARLIEST <= parsed <= LATEST:
        raise FilterError(
            name,
            f"`{name}` is a date written YYYY-MM-DD (UTC), such as 2026-11-29, "
            f"from {EARLIEST} to {LATEST}.",
            f"Enter a day from {_day(EARLIEST)} to {_day(LATEST)}, written YYYY-MM-DD.",
        )
    return parsed


def _day(day: date) -> str:
    return day.strftime("%-d %b %Y")


def date_range(first_text: str, last_text: str) -> DateRange:
    """The days asked for, or the module's defaults; refused in words when they make no range."""
    first, last = _date(first_text, "from"), _date(last_text, "to")
    default = DateRange.ending_today()
    if first is None and last is None:
        return default
    if first is None:
        assert last is not None
        first = last - (default.last - default.first)
    if last is None:
        last = max(first, default.last)
    if first > last:
        raise FilterError(
            "to",
            f"`from` ({first}) is after `to` ({last}): the range would hold no day.",
            f"Choose a day on or after From ({_day(first)}).",
        )
    return DateRange(first, last)


def chosen_action(text: str) -> AuditAction | None:
    if not text:
        return None
    try:
        return AuditAction(text)
    except ValueError:
        raise FilterError(
            "action",
            f"Unknown action. Actions: {', '.join(action.value for action in AuditAction)}.",
            "Choose an action from the list.",
        ) from None


def exported(event: AuditEvent) -> dict[str, str | None]:
    values = event.model_dump()
    row = {column: None if values[column] is None else str(values[column]) for column in COLUMNS}
    row["at"] = event.at.isoformat()
    return row


def _csv_cell(value: str | None) -> str:
    if value is None:
        return ""
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def _csv(events: Iterator[AuditEvent]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for event in events:
        writer.writerow([_csv_cell(value) for value in exported(event).values()])
        if buffer.tell() > _FLUSH_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json(events: Iterator[AuditEvent]) -> Iterator[str]:
    yield "["
    separator = "\n"
    for event in events:
        yield separator + json.dumps(exported(event))
        separator = ",\n"
    yield "\n]\n"


@router.get("/api/audit")
def export_audit(
    workspace: WorkspaceDep,
    engine: EngineDep,
    export_format: Annotated[str, Query(alias="format", max_length=10)] = "json",
    first: Annotated[str, Query(alias="from", max_length=10)] = "",
    last: Annotated[str, Query(alias="to", max_length=10)] = "",
    action: Annotated[str, Query(max_length=48)] = "",
) -> StreamingResponse:
    """The workspace's audit events in the range, oldest first, as CSV (a header row, then one
    row per event) or as a JSON array; either way a file to save."""
    try:
        chosen_format = ExportFormat(export_format)
    except ValueError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="`format` is csv or json.",
        ) from None
    try:
        dates = date_range(first, last)
        only = chosen_action(action)
    except FilterError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=error.message) from None
    workspace_id = workspace.id

    def events() -> Iterator[AuditEvent]:
        # Its own session: the body is streamed after the route (and its session) returned.
        with Session(engine) as session:
            yield from audit.events_between(session, workspace_id, dates, only)

    media_type = (
        "text/csv; charset=utf-8"
        if chosen_format == ExportFormat.csv
        else "application/json; charset=utf-8"
    )
    body = _csv(events()) if chosen_format == ExportFormat.csv else _json(events())
    filename = f"truffle-audit-{dates.first}-{dates.last}.{chosen_format.value}"
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
