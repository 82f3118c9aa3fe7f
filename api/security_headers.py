"""Headers every response gets, in one place.

- every HTML page: a strict Content-Security-Policy (our own scripts and styles only, no frames
  of us anywhere: `frame-ancestors 'none'`), `X-Content-Type-Options: nosniff`,
  `Referrer-Policy: no-referrer` (a screener link in a Referer would hand over the screening),
  and `Cache-Control: no-store`;
- every response of the JSON API (candidate data, the card, a new key): `Cache-Control: no-store`;
- the pages behind a secret link (a candidate's `/s/...`, a report's `/r/...`): `X-Robots-Tag:
  noindex, nofollow` as well, so no search engine keeps one;
- behind https (`PUBLIC_BASE_URL`), `Strict-Transport-Security`.
(The API's documentation page is not on this app: it is an operator endpoint, api/operator.py.)
"""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.middleware import HttpMiddleware

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The operator listener's documentation pages (api/operator.py): their viewer's files come from
# the app itself (never a CDN) and start with an inline script; they show no data.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"
# Pages whose address is the secret (a candidate's screener, a report link).
SECRET_LINK_PATHS = ("/s/", "/r/")


class SecurityHeaders(HttpMiddleware):
    def __init__(self, app: ASGIApp, https: bool) -> None:
        super().__init__(app)
        self.https = https

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                html = headers.get("content-type", "").startswith("text/html")
                if html:
                    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                    headers["Referrer-Policy"] = "no-referrer"
                    headers["X-Frame-Options"] = "DENY"
                if html or path.startswith(("/api/", "/ashby/")):
                    headers["Cache-Control"] = "no-store"
                if path.startswith(SECRET_LINK_PATHS):
                    headers["X-Robots-Tag"] = "noindex, nofollow"
                if self.https:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)

        await self.app(scope, receive, with_headers)
