"""The API process's operator listener: `/healthz`, `/readyz`, `/metrics`, and the API's
documentation (`/docs`, `/openapi.json`), on a port of their own (METRICS_PORT, or
`truffle-ashby api --metrics-port`) that only the monitoring network reaches — never on the
public listener, where candidates and Ashby call.

It is a second small app sharing the public app's state (its database engine, its Temporal
client, its metrics registry), served inside the same process by an embedded uvicorn server
that the public app starts and stops with itself. Its socket is bound with SO_REUSEPORT, so
that the processes of `truffle-ashby api --workers N` share the port as they share the
public one (a scrape is answered by one of them).
"""

import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi_offline import FastAPIOffline

from api import probes
from api.security_headers import DOCS_CONTENT_SECURITY_POLICY
from truffle.runtime.embedded_server import embedded_serving

OPENAPI_PATH = "/openapi.json"
DOCS_ASSETS_PATH = "/static-offline-docs"


def create_operator_app(public: FastAPI, public_base_url: str) -> FastAPI:
    """The operator endpoints of `public`'s process, reading `public`'s state. `/docs` and
    `/redoc` load Swagger UI and ReDoc from files this app serves (the fastapi-offline package
    ships them), never from a CDN: they work on a machine without one."""
    app = FastAPIOffline(
        title=f"{public.title}: API",
        openapi_url=OPENAPI_PATH,
        static_url=DOCS_ASSETS_PATH,
    )
    app.state = public.state
    app.include_router(probes.router)
    app.include_router(probes.operator_router)

    def openapi() -> dict[str, Any]:
        # The public API's description; "Try it out" calls the public address.
        return {**public.openapi(), "servers": [{"url": public_base_url}]}

    app.openapi = openapi  # type: ignore[method-assign]

    @app.middleware("http")
    async def documentation_policy(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "no-referrer"
        return response

    return app


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise RuntimeError(
            f"the operator listener (/metrics, /readyz) cannot listen on port {port}: "
            f"{error.strerror} (set METRICS_PORT or --metrics-port to a free port)"
        ) from None
    sock.listen(128)
    return sock


@contextlib.asynccontextmanager
async def serving(app: FastAPI, host: str, port: int) -> AsyncIterator[None]:
    """Serves `app` on host:port until the block ends."""
    sock = _listening_socket(host, port)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    try:
        async with embedded_serving(config, f"the operator listener on port {port}", [sock]):
            yield
    finally:
        sock.close()
