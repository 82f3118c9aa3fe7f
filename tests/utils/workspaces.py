"""A workspace seeded for an API test: its id and the admin token to call the API with."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SeededWorkspace:
    id: uuid.UUID
    admin_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}


MakeWorkspace = Callable[..., SeededWorkspace]
