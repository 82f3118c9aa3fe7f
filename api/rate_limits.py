"""Abuse limits: `assessment.start` and Connect/Reconnect per workspace, `/signin` per client,
refused webhook deliveries per endpoint.

Over a limit the request is answered 429 with `Retry-After` (in Ashby's envelope on the partner
endpoints) and does nothing. Limits are settings in the `limits` notation ("600/minute"); the
defaults are far above real use. Counted in each API process's memory (a moving window,
`truffle/runtime/moving_window.py`), so with N API processes a client gets at most N times a
limit.
"""

import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from limits import RateLimitItem, parse

from api.vocabulary import plural
from truffle.runtime.moving_window import MovingWindow
from truffle.settings import Settings

WEBHOOK_REFUSALS = "30/minute"


class RateLimitedError(HTTPException):
    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"Too many {what}. Try again in {plural(retry_after, 'second')}.",
            headers={"Retry-After": str(retry_after)},
        )


@dataclass(frozen=True)
class Limit:
    item: RateLimitItem
    what: str


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self._window = MovingWindow()
        self.assessment_start = Limit(
            parse(settings.rate_limit_assessment_start), "screenings started"
        )
        self.connect = Limit(parse(settings.rate_limit_connect), "attempts to connect Ashby")
        self.signin = Limit(parse(settings.rate_limit_signin), "sign-in attempts")
        # Ashby's own deliveries are refused only when its secret is wrong; past this, a refusal
        # is a 429 with nothing logged or written (Ashby retries a 429).
        self.webhook_refusals = Limit(parse(WEBHOOK_REFUSALS), "refused webhook deliveries")

    def retry_after(self, limit: Limit, key: str) -> int | None:
        """Counts one request for `key`; the seconds to wait if it is over the limit."""
        wait = self._window.hit(limit.item, key)
        return None if wait is None else max(1, math.ceil(wait))

    def check(self, limit: Limit, key: str) -> None:
        wait = self.retry_after(limit, key)
        if wait is not None:
            raise RateLimitedError(limit.what, wait)


async def get_rate_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]
