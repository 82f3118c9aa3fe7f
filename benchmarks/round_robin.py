"""A round-robin HTTP load balancer for the scale-out run: the one address Ashby and the
candidates use, in front of several API processes (as a load balancer is in production).

    python benchmarks/round_robin.py --port 8000 --upstream http://127.0.0.1:8001 \\
        --upstream http://127.0.0.1:8002
"""

import argparse
import itertools

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# Hop-by-hop headers, and those the proxy sets again itself.
_DROPPED = {"host", "connection", "keep-alive", "transfer-encoding", "content-length"}


def proxy(upstreams: list[str]) -> Starlette:
    turn = itertools.cycle(upstreams)
    # Upstream connections are kept alive for less than the APIs' 5 s (uvicorn's
    # timeout_keep_alive), so none is reused as its API closes it (a reset, httpx.ReadError).
    limits = httpx.Limits(max_connections=200, keepalive_expiry=2)
    client = httpx.AsyncClient(timeout=60, limits=limits)

    async def forward(request: Request) -> Response:
        upstream = next(turn)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED}
        if request.client is not None:
            headers["x-forwarded-for"] = request.client.host
        reply = await client.request(
            request.method,
            f"{upstream}{request.url.path}",
            params=request.url.query,
            headers=headers,
            content=await request.body(),
        )
        kept = [(k, v) for k, v in reply.headers.multi_items() if k.lower() not in _DROPPED]
        response = Response(reply.content, status_code=reply.status_code)
        response.raw_headers = [
            *[(k.encode(), v.encode()) for k, v in kept if k.lower() != "content-encoding"],
            (b"content-length", str(len(reply.content)).encode()),
        ]
        return response

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", action="append", required=True)
    args = parser.parse_args()
    uvicorn.run(
        proxy(args.upstream), host=args.host, port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
