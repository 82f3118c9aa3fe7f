"""The `truffle-ashby` command."""

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn


def _cmd_workspace_create(args: argparse.Namespace) -> int:
    from truffle.settings import get_settings
    from truffle.storage.db import create_db_engine, require_schema_at_head, session_scope
    from truffle.storage.tables import Plan
    from truffle.workspaces import create_workspace, issue_admin_token

    engine = create_db_engine(get_settings().database_url)
    try:
        require_schema_at_head(engine)
        with session_scope(engine) as session:
            workspace = create_workspace(session, args.name, Plan(args.plan))
            issued = issue_admin_token(session, workspace)
    finally:
        engine.dispose()
    print(json.dumps({"workspace_id": str(issued.workspace_id), "admin_token": issued.admin_token}))
    return 0


def _cmd_workspace_rotate_token(args: argparse.Namespace) -> int:
    import uuid

    from truffle.audit import Actor
    from truffle.settings import get_settings
    from truffle.storage.db import create_db_engine, require_schema_at_head, session_scope
    from truffle.workspaces import rotate_admin_token

    try:
        workspace_id = uuid.UUID(args.workspace_id)
    except ValueError:
        raise ValueError(f"{args.workspace_id!r} is not a workspace id") from None
    engine = create_db_engine(get_settings().database_url)
    try:
        require_schema_at_head(engine)
        with session_scope(engine) as session:
            issued = rotate_admin_token(session, workspace_id, actor=Actor.operator())
    except LookupError:
        raise ValueError(f"there is no workspace {workspace_id}") from None
    finally:
        engine.dispose()
    print(json.dumps({"workspace_id": str(issued.workspace_id), "admin_token": issued.admin_token}))
    return 0


def _cmd_secrets(args: argparse.Namespace) -> int:
    import dataclasses

    from sqlmodel import Session

    from truffle.security import key_rotation
    from truffle.security.secrets import KeyRing
    from truffle.settings import get_settings
    from truffle.storage.db import create_db_engine, require_schema_at_head

    settings = get_settings()
    keyring = KeyRing(settings.secret_keys())
    engine = create_db_engine(settings.database_url)
    try:
        require_schema_at_head(engine)
        if args.secrets_command == "rekey":
            report: object = {"resealed": key_rotation.rekey(engine, keyring)}
        else:
            with Session(engine) as session:
                report = dataclasses.asdict(key_rotation.status(session, keyring))
    finally:
        engine.dispose()
    print(json.dumps(report))
    return 0


def _cmd_migrate(_args: argparse.Namespace) -> int:
    from truffle.settings import get_settings
    from truffle.storage.db import upgrade_to_head

    upgrade_to_head(get_settings().database_url)
    print("database schema is up to date")
    return 0


def _cmd_api(args: argparse.Namespace) -> int:
    import logging
    import os
    from urllib.parse import urlsplit

    import uvicorn

    from truffle.runtime.logs import configure_logging
    from truffle.runtime.temporal_connection import connect_config
    from truffle.settings import get_settings
    from truffle.storage.db import create_db_engine, require_schema_at_head

    if args.metrics_port is not None:
        # Read by every API process this command starts (api/app.py:production_app).
        os.environ["METRICS_PORT"] = str(args.metrics_port)
        get_settings.cache_clear()
    settings = get_settings()
    # Checked here, once, with a one-line error, rather than in every API process.
    settings.secret_keys()
    connect_config(settings)
    engine = create_db_engine(settings.database_url)
    try:
        require_schema_at_head(engine)
    finally:
        engine.dispose()
    configure_logging(settings)
    if settings.plain_http_off_this_machine():
        # Once, from this command, however many API processes it starts.
        logging.getLogger("truffle.api").warning(
            "PUBLIC_BASE_URL is plain http on a host other than this machine (%s): sign-in "
            "sessions and screener links cross the network unencrypted, and the session cookie "
            "is sent without Secure. Put TLS in front and set PUBLIC_BASE_URL to the https:// "
            "address.",
            urlsplit(settings.public_base_url).hostname,
        )
    # Our access line (api/access_log.py) replaces uvicorn's: it carries the request id and
    # names the route, not the path (a screener link's token stays out of the logs).
    uvicorn.run(
        "api.app:production_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        log_level=settings.log_level.lower(),
        access_log=False,
        # The app reads X-Forwarded-For itself (FORWARDED_ALLOW_IPS, api/app.py).
        proxy_headers=False,
    )
    return 0


def _cmd_worker(_args: argparse.Namespace) -> int:
    import worker

    worker.main()
    return 0


def _cmd_versions(_args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses

    from truffle.runtime.temporal_connection import connect_temporal
    from truffle.settings import get_settings
    from workflows.versions import open_runs_by_release

    settings = get_settings()

    async def count() -> list[dict[str, object]]:
        client = await connect_temporal(settings)
        return [dataclasses.asdict(found) for found in await open_runs_by_release(client)]

    print(json.dumps({"ScreeningWorkflow": asyncio.run(count())}))
    return 0


def _cmd_reconcile(_args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses

    from activities.reconcile import ReconcilerActivities
    from truffle.runtime.temporal_connection import connect_temporal
    from truffle.security.payload_crypto import PayloadKeys, data_converter
    from truffle.security.secrets import KeyRing
    from truffle.settings import get_settings
    from truffle.storage.db import create_db_engine, require_schema_at_head
    from workflows.launcher import Launcher

    settings = get_settings()
    engine = create_db_engine(settings.database_url)

    async def one_pass() -> dict[str, object]:
        # The runs it starts get their input encrypted, as the worker's and the API's do.
        keys = PayloadKeys(engine, KeyRing(settings.secret_keys()))
        client = await connect_temporal(settings, converter=data_converter(keys))
        launcher = Launcher(client, settings.temporal_task_queue, settings.held_update_retention)
        report = await ReconcilerActivities(engine, launcher).reconcile()
        return dataclasses.asdict(report)

    try:
        require_schema_at_head(engine)
        report = asyncio.run(one_pass())
    except RuntimeError as error:
        print(f"truffle-ashby reconcile: {error}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(json.dumps(report))
    return 0


# Commands that need the `dev` extra and the development tools the production image leaves out.
DEVELOPMENT_COMMANDS = frozenset({"dev", "demo", "sandbox", "mail-sink"})


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from tools import ashby_sandbox

    ashby_sandbox.run(args.host, args.port)
    return 0


def _cmd_mail_sink(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tools import mail_sink

    mail_sink.run(args.host, args.smtp_port, args.http_port, Path(args.mail_dir))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from tools.demo import run_demo

    return run_demo(args.api_url, args.sandbox_url, args.mail_url)


def _cmd_dev(args: argparse.Namespace) -> int:
    from tools.devstack import DevStack, DevStackPorts

    ports = DevStackPorts(
        api=args.api_port,
        sandbox=args.sandbox_port,
        temporal=args.temporal_port,
        temporal_ui=args.temporal_ui_port,
        smtp=args.smtp_port,
        mail_ui=args.mail_ui_port,
        worker_metrics=args.worker_metrics_port,
        api_metrics=args.api_metrics_port,
    )
    return DevStack(ports=ports, host=args.host, database=args.database).run()


def _cmd_temporal_certs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tools.temporal_certs import issue

    try:
        issued = issue(
            Path(args.ca_dir),
            Path(args.server_dir),
            Path(args.client_dir),
            args.server_name,
            group=args.group,
        )
    except OSError as error:
        raise ValueError(
            f"cannot write the certificates ({error.filename}): {error.strerror}"
        ) from None
    print(
        f"temporal-certs: CA {issued.ca}, server certificate {issued.server} "
        f"({', '.join(args.server_name)}), client certificate {issued.client}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="truffle-ashby", description="Truffle <-> Ashby integration"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser(
        "dev", help="run the whole stack locally (Temporal, worker, API, SMTP sink, Ashby sandbox)"
    )
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--api-port", type=int, default=8000)
    dev.add_argument("--sandbox-port", type=int, default=8100)
    dev.add_argument("--temporal-port", type=int, default=7233)
    dev.add_argument("--temporal-ui-port", type=int, default=8233)
    dev.add_argument("--smtp-port", type=int, default=1025)
    dev.add_argument("--mail-ui-port", type=int, default=8025)
    dev.add_argument("--worker-metrics-port", type=int, default=9464)
    dev.add_argument("--api-metrics-port", type=int, default=9465)
    dev.add_argument(
        "--database",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="sqlite: the file in .data/ (kept); postgres: a throwaway PostgreSQL for this run",
    )
    dev.set_defaults(handler=_cmd_dev)

    demo = commands.add_parser(
        "demo", help="play the whole story against a running `make run` stack, step by step"
    )
    demo.add_argument("--api-url", default="http://localhost:8000")
    demo.add_argument("--sandbox-url", default="http://127.0.0.1:8100")
    demo.add_argument("--mail-url", default="http://127.0.0.1:8025")
    demo.set_defaults(handler=_cmd_demo)

    api = commands.add_parser("api", help="run the HTTP API (production process)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API processes sharing the port (the abuse limits count in each one's memory, "
        "and /metrics answers for one of them at random: prefer one process per container)",
    )
    api.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="the operator listener's port (/metrics, /readyz, /docs; all interfaces; default "
        "METRICS_PORT): keep it off the public network",
    )
    api.set_defaults(handler=_cmd_api)

    commands.add_parser("worker", help="run the Temporal worker (production process)").set_defaults(
        handler=_cmd_worker
    )

    certs = commands.add_parser(
        "temporal-certs",
        help="a private CA and the certificates of mTLS to Temporal (docker-compose.yml's "
        "one-shot job); keeps what is still good",
    )
    certs.add_argument("--ca-dir", required=True, help="the CA (its key stays here)")
    certs.add_argument("--server-dir", required=True, help="Temporal's certificate and key")
    certs.add_argument("--client-dir", required=True, help="the clients' certificate and key")
    certs.add_argument(
        "--server-name",
        action="append",
        required=True,
        help="a name (or address) clients reach Temporal by; repeat for more",
    )
    certs.add_argument(
        "--group", type=int, default=None, help="the group id that may read the keys"
    )
    certs.set_defaults(handler=_cmd_temporal_certs)
    commands.add_parser(
        "migrate", help="upgrade the database schema to the newest migration"
    ).set_defaults(handler=_cmd_migrate)

    commands.add_parser(
        "reconcile",
        help="one reconciliation pass now: give every unsettled screening a running workflow",
    ).set_defaults(handler=_cmd_reconcile)

    commands.add_parser(
        "versions",
        help="how many open screening workflows each release (workflow patch) has",
    ).set_defaults(handler=_cmd_versions)

    sandbox = commands.add_parser(
        "sandbox", help="run the Ashby sandbox (a local stand-in for Ashby)"
    )
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8100)
    sandbox.set_defaults(handler=_cmd_sandbox)

    sink = commands.add_parser("mail-sink", help="run the local SMTP sink that keeps every message")
    sink.add_argument("--host", default="127.0.0.1")
    sink.add_argument("--smtp-port", type=int, default=1025)
    sink.add_argument("--http-port", type=int, default=8025)
    sink.add_argument("--mail-dir", default=".data/mail")
    sink.set_defaults(handler=_cmd_mail_sink)

    secrets_parser = commands.add_parser(
        "secrets", help="retire a key of TRUFFLE_SECRET_KEYS: see what depends on each, rekey"
    )
    secrets_commands = secrets_parser.add_subparsers(dest="secrets_command", required=True)
    secrets_commands.add_parser(
        "status", help="how many stored values and Truffle keys still depend on each key"
    ).set_defaults(handler=_cmd_secrets)
    secrets_commands.add_parser(
        "rekey", help="re-encrypt every stored value under the current (first) key"
    ).set_defaults(handler=_cmd_secrets)

    workspace = commands.add_parser("workspace", help="manage workspaces")
    workspace_commands = workspace.add_subparsers(dest="workspace_command", required=True)
    create = workspace_commands.add_parser(
        "create", help="create a workspace and print its admin token (shown once)"
    )
    create.add_argument("--name", required=True)
    create.add_argument("--plan", required=True, choices=["paid", "trial"])
    create.set_defaults(handler=_cmd_workspace_create)
    rotate = workspace_commands.add_parser(
        "rotate-token",
        help="revoke the workspace's admin token (and every session opened with it) and print "
        "a new one (shown once)",
    )
    rotate.add_argument("workspace_id")
    rotate.set_defaults(handler=_cmd_workspace_rotate_token)
    return parser


def _told_in_one_line(error: Exception) -> bool:
    """Whether `error` is one a command reports in one line with exit status 2. Imported here,
    on the way out: the sandbox and the mail sink never load the database or Temporal."""
    from truffle.runtime.temporal_connection import TemporalUnreachableError
    from truffle.settings import MissingSecretKeysError
    from truffle.storage.db import SchemaOutOfDateError

    told = (MissingSecretKeysError, SchemaOutOfDateError, TemporalUnreachableError, ValueError)
    return isinstance(error, told)


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError

    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ModuleNotFoundError as missing:
        if args.command not in DEVELOPMENT_COMMANDS:
            raise
        # The production image and `pip install truffle-ashby` carry no development tools.
        print(
            f"truffle-ashby {args.command}: a development command, and this installation has no "
            f"development tools ({missing.name} is missing): install the dev extra "
            "(`pip install -e '.[dev]'`, which `make run` does).",
            file=sys.stderr,
        )
        return 2
    except Exception as error:
        if not _told_in_one_line(error):
            raise
        message = str(error)
        if isinstance(error, ValidationError):
            message = "; ".join(
                f"{'.'.join(str(p) for p in item['loc']).upper()}: {item['msg']}"
                for item in error.errors()
            )
        print(f"truffle-ashby: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script: `main`, then the process ends with its exit code."""
    try:
        code = main(argv)
    except SystemExit as leaving:  # argparse's --help and usage errors, as Python ends them
        code = leaving.code if isinstance(leaving.code, int) else int(leaving.code is not None)
        if leaving.code is not None and not isinstance(leaving.code, int):
            print(leaving.code, file=sys.stderr)
    except BaseException:  # reported as Python would, then the same exit below
        traceback.print_exc()
        code = 1
    from truffle.runtime.process_exit import end_process

    end_process(code)


if __name__ == "__main__":
    run()
