"""Liveness (`/healthz`), readiness (`/readyz`) and Prometheus metrics (`/metrics`).

`/healthz` says the process answers (on both listeners: a container's health check asks the
public port); `/readyz` that it can work now (its database and Temporal answer), so a load
balancer sends it traffic; `/metrics` holds no personal data. The last two are served on the
operator listener only (api/operator.py), never on the public one.
"""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.deps import EngineDep, GatewayDep
from truffle.runtime import readiness
from truffle.runtime.metrics import exposition

router = APIRouter(tags=["health"])
operator_router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}


@operator_router.get("/readyz")
async def readyz(engine: EngineDep, gateway: GatewayDep) -> JSONResponse:
    report = await readiness.check(engine, gateway.client)
    ready = readiness.is_ready(report)
    return JSONResponse({"ready": ready, **report}, status_code=200 if ready else 503)


@operator_router.get("/metrics")
def metrics(request: Request) -> Response:
    body, content_type = exposition(request.app.state.metrics_registry)
    return Response(body, media_type=content_type)
