"""The custom search attributes engineers filter screenings by in the Temporal UI.

Only non-personal ids and statuses: never a candidate's name or email.
"""

from temporalio.common import SearchAttributeKey

WORKSPACE_ID = SearchAttributeKey.for_keyword("TruffleWorkspaceId")
POSITION_ID = SearchAttributeKey.for_keyword("TrufflePositionId")
ASHBY_APPLICATION_ID = SearchAttributeKey.for_keyword("AshbyApplicationId")
SCREENING_STATUS = SearchAttributeKey.for_keyword("ScreeningStatus")

ALL_SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[str], ...] = (
    WORKSPACE_ID,
    POSITION_ID,
    ASHBY_APPLICATION_ID,
    SCREENING_STATUS,
)


def dev_server_flags() -> list[str]:
    """`temporal server start-dev` arguments that register every attribute above."""
    flags: list[str] = []
    for key in ALL_SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}=Keyword"]
    return flags
