"""An error on one of the console's pages is a page: inside the console's layout (the plain
one for a visitor who is not signed in, and always for the candidate's and the report's
pages), in words, with a way back. A malformed id in a page's address is a page that is not
found. The JSON API (`/api/`), Ashby's partner endpoints (`/ashby/`), the codec and the
probes keep their JSON."""

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse

from api.templating import templates
from truffle.security.sessions import SESSION_COOKIE

JSON_PATH_PREFIXES = (
    "/api/",
    "/ashby/",
    "/codec/",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
    "/static/",
    "/static-offline-docs/",
)
# The candidate's screener and the report link: never the admin's layout or links.
OUTSIDE_PATH_PREFIXES = ("/s/", "/r/")


@dataclass(frozen=True)
class Section:
    thing: str  # what an id in its addresses names
    href: str
    label: str


SECTIONS = {
    "screenings": Section("screening", "/screenings", "Back to Screenings"),
    "positions": Section("position", "/positions", "Back to Positions"),
    "audit": Section("event", "/audit", "Back to Audit"),
    "integrations": Section("integration", "/integrations", "Back to Integrations"),
}
HOME = Section("page", "/integrations", "Go to Integrations")
INTERNAL_ERROR_WORDS = (
    "Truffle could not show this page. Try again; if it persists, quote the X-Request-ID of "
    "this answer to Truffle's support."
)


def is_page(path: str) -> bool:
    return not path.startswith(JSON_PATH_PREFIXES)


def _section(path: str) -> tuple[Section, bool]:
    """The console's section of the address, and whether the address names one thing in it."""
    parts = [part for part in path.split("/") if part]
    if parts and parts[0] in SECTIONS:
        return SECTIONS[parts[0]], len(parts) > 1
    return HOME, False


def _words(status_code: int, detail: str, path: str) -> tuple[str, str]:
    section, names_one = _section(path)
    if status_code == 404 and names_one and section is not HOME:
        return (
            f"{section.thing.capitalize()} not found",
            f"There is no {section.thing} at this address in your workspace. The link may be "
            f"incomplete, or the {section.thing} may belong to another workspace.",
        )
    if status_code in (404, 405):
        return "Page not found", "There is no page at this address."
    if status_code == 401:
        return "Sign in again", detail
    if status_code == 403:
        return "This cannot be done from here", detail
    if status_code == 409:
        return "Not done", detail
    if status_code >= 500:
        return "Something went wrong", detail or INTERNAL_ERROR_WORDS
    return "This address cannot be shown", detail


def error_page(request: Request, status_code: int, detail: str) -> HTMLResponse:
    path = request.url.path
    outside = path.startswith(OUTSIDE_PATH_PREFIXES)
    heading, message = _words(status_code, detail, path)
    section, _ = _section(path)
    back = None if outside else section
    if status_code == 401 and not outside:
        back = Section("", f"/signin?next={section.href}", "Sign in")
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "heading": heading,
            "message": message,
            "back": back,
            "status_code": status_code,
            # Only the layout depends on this (no data is shown), so the cookie is not read.
            "signed_in": not outside and SESSION_COOKIE in request.cookies,
            "current_page": next((key for key, s in SECTIONS.items() if s is section), None),
        },
        status_code=status_code,
    )
