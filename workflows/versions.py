"""Which releases of `ScreeningWorkflow` open runs are on, from Temporal's visibility.

Each run records the newest patch its release knew (`workflow.patched` upserts the patch id
into the `TemporalChangeVersion` search attribute); runs from before release v2 record none.
A release's branches can go once no open run is on it: see docs/workflows.md ("Retiring a
release").
"""

from dataclasses import dataclass

from temporalio.client import Client

from workflows.screening import (
    SETTINGS_PATCH,
    V2_PATCH,
    V3_PATCH,
    V4_PATCH,
    V5_PATCH,
    V6_PATCH,
)

# Newest first: the patch each release marks its runs with. v5's runs carry the position
# settings patch, or (started before it came, while v5 was not released yet) v5's own.
RELEASES = (
    ("v6", V6_PATCH),
    ("v5", SETTINGS_PATCH),
    ("v4", V4_PATCH),
    ("v3", V3_PATCH),
    ("v2", V2_PATCH),
)
ALSO_MARKING = {"v5": (V5_PATCH,)}
BEFORE_V2 = "v1"
_OPEN_SCREENINGS = "WorkflowType = 'ScreeningWorkflow' AND ExecutionStatus = 'Running'"


@dataclass(frozen=True)
class ReleaseCount:
    release: str
    patch: str | None  # None: runs from before the first patch
    open_runs: int


async def open_runs_by_release(client: Client) -> list[ReleaseCount]:
    """How many open screening runs each release has, newest release first."""
    counts = []
    for release, patch in RELEASES:
        marks = " OR ".join(
            f"TemporalChangeVersion = '{mark}'" for mark in (patch, *ALSO_MARKING.get(release, ()))
        )
        found = await client.count_workflows(f"{_OPEN_SCREENINGS} AND ({marks})")
        counts.append(ReleaseCount(release, patch, found.count))
    unmarked = await client.count_workflows(f"{_OPEN_SCREENINGS} AND TemporalChangeVersion IS NULL")
    counts.append(ReleaseCount(BEFORE_V2, None, unmarked.count))
    return counts
