"""Fixtures of the API tests: the app in process, and workspaces to call it as."""

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from tests.utils.workspaces import MakeWorkspace, SeededWorkspace
from truffle.settings import Settings
from truffle.storage.db import session_scope
from truffle.storage.tables import Plan
from truffle.workspaces import create_workspace, issue_admin_token


@pytest.fixture
def make_workspace(engine: sa.Engine) -> MakeWorkspace:
    def make(name: str = "Acme", plan: Plan = Plan.paid) -> SeededWorkspace:
        with session_scope(engine) as session:
            workspace = create_workspace(session, name, plan)
            issued = issue_admin_token(session, workspace)
        return SeededWorkspace(id=issued.workspace_id, admin_token=issued.admin_token)

    return make


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
