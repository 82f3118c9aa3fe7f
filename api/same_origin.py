"""State changes made with the browser's session cookie must come from our own pages.

`/signin` and `/signout`, and every request that changes something with the session cookie
(rather than an `Authorization` header), are refused with 403 when the browser says it was sent
from another site: `Sec-Fetch-Site` other than `same-origin` (or `none`, typed by the user), or
an `Origin` whose host is not the one the request was sent to. Without either header (not a
browser) the CSRF token the pages send still guards every cookie-authenticated call. This stops
login CSRF: a victim signed in to an attacker's workspace would paste their company's Ashby key
there.
"""

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
ALWAYS_CHECKED = ("/signin", "/signout")
# Read-only by design (the codec endpoint decodes for the Temporal UI, another origin, under
# its own CORS rules): not a state change.
NEVER_CHECKED = ("/codec/",)
REFUSAL = "This request came from another site. Open Truffle directly and try again."


def cross_site(headers: Headers) -> bool:
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc != headers.get("host", "")


class SameOriginForStateChanges:
    def __init__(self, app: ASGIApp, session_cookie: str) -> None:
        self.app = app
        self.session_cookie = session_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in SAFE_METHODS
            and not scope["path"].startswith(NEVER_CHECKED)
        ):
            headers = Headers(scope=scope)
            by_cookie = self.session_cookie in cookie_parser(
                headers.get("cookie", "")
            ) and not headers.get("authorization")
            if (scope["path"] in ALWAYS_CHECKED or by_cookie) and cross_site(headers):
                response = JSONResponse({"message": REFUSAL}, status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
