"""One access line per request, with our request id, and the HTTP metrics.

Each request gets an id: the caller's `X-Request-ID` when it is a plain token, else a new one.
It is bound to every line logged while the request runs and sent back as `X-Request-ID`, so a
reply in hand leads to its log lines.

The line and the metrics name the route's template (`/s/{token}`), never the path itself: a
screener link's token lets anyone answer as the candidate, and ids do not belong in labels.
"""

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from api.middleware import HttpMiddleware
from truffle.runtime import metrics
from truffle.runtime.logs import bound_ids

logger = logging.getLogger("truffle.api.access")
_PLAIN_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
REQUEST_ID_HEADER = "X-Request-ID"
UNMATCHED = "<unmatched>"


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            presented: str = value.decode("latin-1")
            if _PLAIN_ID.fullmatch(presented):
                return presented
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED


class RequestLog(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _request_id(scope)
        started = time.perf_counter()
        status = 500

        async def with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with bound_ids(request_id=request_id):
            try:
                await self.app(scope, receive, with_request_id)
            finally:
                seconds = time.perf_counter() - started
                route = route_template(scope)
                method = scope["method"]
                metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
                metrics.HTTP_LATENCY.labels(method, route).observe(seconds)
                logger.info(
                    "%s %s %d %.1f ms",
                    method,
                    route,
                    status,
                    seconds * 1000,
                    extra={"http_method": method, "route": route, "status": status},
                )
