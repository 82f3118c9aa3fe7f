"""Shared fixtures: settings on a throwaway database, PostgreSQL, Temporal environments, and the
real local services. Helpers live in `tests/utils/`."""

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.async_api import Browser, async_playwright
from temporalio.testing import WorkflowEnvironment

from tests.utils.chromium import INSTALL_HINT, find_chromium
from tests.utils.mail import MailSink
from tests.utils.postgres import fresh_schema, postgres_server
from tests.utils.processes import CLI, free_port, installed_binary, stop_process, wait_for_http
from tests.utils.temporal import start_time_skipping
from tools.ashby_sandbox.client import SandboxClient
from truffle.settings import Settings, generate_secret_key
from truffle.storage.db import create_db_engine, upgrade_to_head
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES


@pytest.fixture
def secret_key() -> str:
    return generate_secret_key()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'truffle.db'}"


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database at the newest migration, made once a session: each test's database
    starts as a copy of it (the migrations themselves are tested in tests/truffle)."""
    path = tmp_path_factory.mktemp("template") / "truffle.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test (or module) marked `both_databases` runs on SQLite and again on PostgreSQL: every
    fixture built on `database_kind` (the core's `settings` and `engine`, the integration
    stacks) follows it. The core's tests that reach the database are marked, and one end-to-end
    module; every other test runs on SQLite, as does one marked `sqlite_only` (it reads SQLite's
    own files)."""
    marked = metafunc.definition.get_closest_marker
    if "database_kind" in metafunc.fixturenames and marked("both_databases"):
        # A `sqlite_only` test is still parametrized, so that it shares a module's SQLite
        # fixtures (a module-scoped stack) with the others.
        kinds = ["sqlite"] if marked("sqlite_only") else ["sqlite", "postgresql"]
        metafunc.parametrize("database_kind", kinds, scope="module")


# The modules that take longest (test-seconds in a full run on the 2-core machine), handed to
# the xdist workers first, heaviest first: started last, one of them would leave a worker
# running it alone at the end. Every other module follows, most tests first. An out-of-date
# list costs only minutes, never a result.
HEAVIEST_FIRST = (
    "tests/benchmarks/test_chaos.py",  # 20 to 60 s: as long as what its kills cut off
    "tests/integration/test_screening_end_to_end.py",
    "tests/benchmarks/test_load.py",
    "tests/integration/test_ashby_faults.py",
    "tests/integration/test_operator_actions.py",
    "tests/tools/test_dev_stack.py",
    "tests/api/test_console_in_chromium.py",
    "tests/tools/test_cli.py",
    "tests/integration/test_integrations_page.py",
    "tests/integration/test_operations.py",
    "tests/api/test_properties.py",
    "tests/workflows/test_screening_workflow.py",
    "tests/api/test_invite_settings_in_chromium.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Orders the modules for the xdist workers (`--dist loadscope --no-loadscope-reorder` in the
    Makefile hands them out in this order): HEAVIEST_FIRST, then the rest by number of tests."""
    counts: dict[str, int] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        counts[module] = counts.get(module, 0) + 1

    def rank(item: pytest.Item) -> tuple[int, int]:
        module = item.nodeid.split("::")[0]
        heavy = HEAVIEST_FIRST.index(module) if module in HEAVIEST_FIRST else len(HEAVIEST_FIRST)
        return heavy, -counts[module]

    items.sort(key=rank)  # stable: a module's own tests keep their order


@pytest.fixture(scope="session")
def database_kind() -> str:
    """SQLite, unless the test is marked `both_databases` (then each in turn)."""
    return "sqlite"


@pytest.fixture
def migrated_database_url(
    request: pytest.FixtureRequest, database_kind: str, sqlite_url: str, migrated_sqlite: Path
) -> Iterator[str]:
    """A database at the newest migration for this test alone: a copy of the session's migrated
    SQLite file, or a fresh PostgreSQL schema migrated (a quarter of a second)."""
    if database_kind == "postgresql":
        with fresh_schema(request.getfixturevalue("postgres_server_url")) as url:
            upgrade_to_head(url)
            yield url
        return
    shutil.copyfile(migrated_sqlite, sqlite_url.removeprefix("sqlite:///"))
    yield sqlite_url


@pytest.fixture
def settings(migrated_database_url: str, secret_key: str) -> Settings:
    return Settings(
        database_url=migrated_database_url,
        truffle_secret_keys=secret_key,
        ashby_api_base_url="http://127.0.0.1:9",
        public_base_url="http://testserver",
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[sa.Engine]:
    engine = create_db_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`TEST_POSTGRES_URL`, or a throwaway embedded PostgreSQL started for this session."""
    with postgres_server(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh schema in that PostgreSQL, dropped afterwards."""
    with fresh_schema(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_server_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=installed_binary("temporal"),
        search_attributes=ALL_SEARCH_ATTRIBUTES,
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def mail_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSink]:
    sink = MailSink(
        smtp_port=free_port(),
        http_port=free_port(),
        mail_dir=tmp_path_factory.mktemp("mail"),
    )
    process = subprocess.Popen(
        [
            *CLI, "mail-sink",
            "--smtp-port", str(sink.smtp_port),
            "--http-port", str(sink.http_port),
            "--mail-dir", str(sink.mail_dir),
        ]
    )  # fmt: skip
    try:
        wait_for_http(f"{sink.base_url}/healthz", process)
        yield sink
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def ashby_sandbox() -> Iterator[SandboxClient]:
    port = free_port()
    process = subprocess.Popen([*CLI, "sandbox", "--port", str(port)])
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process)
        yield SandboxClient(f"http://127.0.0.1:{port}")
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = find_chromium()
    if executable is None:
        pytest.exit(INSTALL_HINT, returncode=1)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=executable,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        await chromium.close()
