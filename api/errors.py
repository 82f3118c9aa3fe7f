"""Every error leaves with the right status: `{"message": ...}` for Truffle's own API, Ashby's
error envelope for the partner endpoints Ashby calls, and a page in the console's layout for
the pages people open (api/error_pages.py)."""

import logging
import traceback
import uuid
from collections.abc import Mapping
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.error_pages import error_page, is_page
from api.middleware import HttpMiddleware

MAX_BODY_BYTES = 1024 * 1024
INTERNAL_ERROR_MESSAGE = (
    "Truffle could not answer this request. Try again; if it persists, quote the X-Request-ID "
    "of this answer to Truffle's support."
)
logger = logging.getLogger("truffle.api.errors")


def _describe_validation_error(error: RequestValidationError) -> str:
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        if item.get("type") == "json_invalid":
            return "The request body is not valid JSON."
        problems.append(f"{location}: {item.get('msg')}" if location else str(item.get("msg")))
    return "Invalid request: " + "; ".join(problems)


PARTNER_PATH_PREFIX = "/ashby/"
# Ashby shows a 422 `{"message"}` from assessment.start to the recruiter, so bad input there
# is answered in that shape rather than the error envelope.
START_PATH = "/ashby/assessment.start"
_PARTNER_ERROR_CODES = {
    400: "invalid_input",
    401: "unauthenticated",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "rate_limit_exceeded",
}


def ashby_error(
    status_code: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Ashby's error envelope, as Ashby's own API answers it."""
    body = {
        "success": False,
        "errors": [code],
        "errorInfo": {"code": code, "message": message, "requestId": uuid.uuid4().hex},
    }
    return JSONResponse(body, status_code=status_code, headers=headers)


def _is_partner_path(path: str) -> bool:
    return path.startswith(PARTNER_PATH_PREFIX)


def install_error_handlers(app: FastAPI) -> None:
    from api.pages import SignInRequiredError
    from api.partner import PartnerAuthError
    from truffle.ashby.assessments import RecruiterRefusalError

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_partner_path(request.url.path):
            code = _PARTNER_ERROR_CODES.get(exc.status_code, "error")
            return ashby_error(exc.status_code, code, str(exc.detail), exc.headers)
        if is_page(request.url.path):
            return _page(request, exc.status_code, str(exc.detail), exc.headers)
        return JSONResponse(
            {"message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        message = _describe_validation_error(exc)
        if is_page(request.url.path):
            # A page's address with a malformed id names nothing: not found, as any unknown id.
            in_path = any((item.get("loc") or ("",))[0] == "path" for item in exc.errors())
            return _page(request, 404 if in_path else 422, message)
        if request.url.path == START_PATH:
            return JSONResponse({"message": message}, status_code=422)
        if _is_partner_path(request.url.path):
            return ashby_error(400, "invalid_input", message)
        return JSONResponse({"message": message}, status_code=422)

    @app.exception_handler(SignInRequiredError)
    async def _sign_in(request: Request, _exc: SignInRequiredError) -> RedirectResponse:
        return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)

    @app.exception_handler(RecruiterRefusalError)
    async def _recruiter_error(_request: Request, exc: RecruiterRefusalError) -> JSONResponse:
        return JSONResponse({"message": str(exc)}, status_code=422)

    @app.exception_handler(PartnerAuthError)
    async def _partner_auth_error(_request: Request, _exc: PartnerAuthError) -> JSONResponse:
        return ashby_error(
            401,
            "unauthenticated",
            "Send the Truffle key as the HTTP Basic username. This key is missing, malformed, "
            "unknown or revoked.",
            headers={"WWW-Authenticate": 'Basic realm="Truffle"'},
        )


def _page(
    request: Request, status_code: int, detail: str, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    response = error_page(request, status_code, detail)
    response.headers.update(headers or {})
    return response


class _TrackedSend:
    """`send`, remembering whether the response has begun (after that, no other answer can be
    sent in its place)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class UnhandledErrors(HttpMiddleware):
    """An exception no handler took becomes a 500 in the shape of the path's other errors. It
    sits inside the access log's middleware, so the answer carries `X-Request-ID` and the line
    logged for it the request's ids (Starlette's own 500 is sent from outside every middleware,
    and uvicorn logs its traceback with neither). The line names the exception's type and where
    it was raised, never its message or arguments: a database error quotes the values it failed
    on, a candidate's name or email among them."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracked = _TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as error:
            stack = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
            logger.error(
                "unhandled %s (its message is not logged: it may hold personal data)\n"
                "Traceback (most recent call last):\n%s%s",
                type(error).__name__,
                stack,
                type(error).__name__,
                extra={"error_type": type(error).__name__},
            )
            if tracked.started:
                # Too late for a 500: the connection closes on an incomplete answer.
                return
            path = scope.get("path", "")
            response: Response
            if _is_partner_path(path):
                response = ashby_error(500, "internal_error", INTERNAL_ERROR_MESSAGE)
            elif is_page(path):
                response = error_page(Request(scope), 500, "")
            else:
                response = JSONResponse({"message": INTERNAL_ERROR_MESSAGE}, status_code=500)
            await response(scope, receive, send)


class BodySizeLimit(HttpMiddleware):
    """Refuses request bodies over the limit with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(scope, send)
                return

        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLargeError
            return message

        tracked = _TrackedSend(send)
        try:
            await self.app(scope, limited_receive, tracked)
        except _BodyTooLargeError:
            if not tracked.started:
                await self._refuse(scope, send)
        except Exception:
            if too_large and not tracked.started:
                await self._refuse(scope, send)
                return
            raise

    async def _refuse(self, scope: Scope, send: Send) -> None:
        message = f"The request body is larger than {self.max_bytes // 1024} KiB."
        response = (
            ashby_error(413, "payload_too_large", message)
            if _is_partner_path(scope.get("path", ""))
            else JSONResponse({"message": message}, status_code=413)
        )
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body})


class _BodyTooLargeError(Exception):
    pass
