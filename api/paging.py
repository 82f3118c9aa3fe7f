"""What the console's paged lists (the screenings, the audit trail) share: the status a page is
answered with, and the links to the list's first and next pages."""

from typing import Any
from urllib.parse import urlencode

from fastapi import status


def list_status(errors: dict[str, str], problem: str | None) -> int:
    """422 when a filter names nothing, 400 when the page link no longer works, else 200."""
    if errors:
        return status.HTTP_422_UNPROCESSABLE_CONTENT
    if problem:
        return status.HTTP_400_BAD_REQUEST
    return status.HTTP_200_OK


def page_links(
    query: dict[str, str], next_cursor: str | None, cursor: str | None
) -> dict[str, Any]:
    """The template's links: the first page with the same filters, the next page (None after
    the last), and whether this page is a later one (`paged`)."""
    return {
        "next_query": urlencode({**query, "cursor": next_cursor}) if next_cursor else None,
        "first_query": urlencode(query),
        "paged": cursor is not None,
    }
