"""Moving-window rate limits counted in this process's memory, written in `limits`' notation
("600/minute"): the API's abuse limits and the worker's pacing of posts to Ashby.

`limits` parses the notation. Its in-memory storage is not used: it starts a timer thread to
expire old entries whenever its last one has finished, which under steady traffic is a new
thread for nearly every hit (about 0.4 ms of CPU each, measured here), on every
`assessment.start` and every post. Here a key's old hits are dropped when the key is hit, and
keys nobody hit within their window are swept at most once a minute.
"""

import threading
import time
from collections import deque
from collections.abc import Callable

from limits import RateLimitItem

# How often keys whose window has emptied are dropped (so a limit per client IP holds only the
# clients of the last window, not every one ever seen).
SWEEP_SECONDS = 60.0


class MovingWindow:
    """At most `item.amount` hits per key within any `item.get_expiry()` seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # (limit, key) -> (the window in seconds, the times of the hits within it, oldest first)
        self._hits: dict[tuple[str, str], tuple[float, deque[float]]] = {}
        self._swept_at = clock()

    def hit(self, item: RateLimitItem, key: str) -> float | None:
        """Counts one hit for `key` and returns None; or, when `key` has had its `item.amount`
        within the window, counts nothing and returns the seconds until a hit leaves it."""
        window = float(item.get_expiry())
        if item.amount == 0:
            return window  # a limit of none: every hit waits a whole window
        with self._lock:
            now = self._clock()
            if now - self._swept_at >= SWEEP_SECONDS:
                self._sweep(now)
            _, hits = self._hits.setdefault((item.key_for(), key), (window, deque()))
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) < item.amount:
                hits.append(now)
                return None
            return hits[0] + window - now

    def _sweep(self, now: float) -> None:
        self._swept_at = now
        for known, (window, hits) in list(self._hits.items()):
            if not hits or hits[-1] <= now - window:
                del self._hits[known]

    def __len__(self) -> int:
        """How many keys it holds."""
        return len(self._hits)
