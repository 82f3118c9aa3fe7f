"""Request dependencies: the sandbox's in-memory state and its HTTP client for the partner."""

from typing import Annotated

import httpx
from fastapi import Depends, Request

from tools.ashby_sandbox.state import SandboxState


def get_state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


StateDep = Annotated[SandboxState, Depends(get_state)]


def get_partner_http(request: Request) -> httpx.AsyncClient:
    client: httpx.AsyncClient = request.app.state.partner_http
    return client


PartnerHttpDep = Annotated[httpx.AsyncClient, Depends(get_partner_http)]
