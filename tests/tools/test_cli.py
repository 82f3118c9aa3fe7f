"""`truffle-ashby workspace create` and the admin token it prints."""

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.utils.processes import free_port, stop_process, wait_for_http
from truffle.settings import Settings, generate_secret_key


def run_cli(*args: str, database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    env.pop("TRUFFLE_SECRET_KEYS", None)
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def create_workspace(settings: Settings, tmp_path: Path, name: str, plan: str) -> dict[str, str]:
    result = run_cli(
        "workspace", "create", "--name", name, "--plan", plan,
        database_url=settings.database_url, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed: dict[str, str] = json.loads(result.stdout)
    return printed


def test_workspace_create_prints_the_id_and_a_token_that_signs_in(
    settings: Settings, tmp_path: Path
) -> None:
    created = create_workspace(settings, tmp_path, "Acme", "paid")
    assert set(created) == {"workspace_id", "admin_token"}
    with TestClient(create_app(settings)) as client:
        response = client.get(
            "/api/workspace", headers={"Authorization": f"Bearer {created['admin_token']}"}
        )
    assert response.status_code == 200
    assert response.json() == {"id": created["workspace_id"], "name": "Acme", "plan": "paid"}


def test_each_token_sees_only_its_own_workspace(settings: Settings, tmp_path: Path) -> None:
    acme = create_workspace(settings, tmp_path, "Acme", "paid")
    globex = create_workspace(settings, tmp_path, "Globex", "trial")
    with TestClient(create_app(settings)) as client:
        for created, name, plan in ((acme, "Acme", "paid"), (globex, "Globex", "trial")):
            response = client.get(
                "/api/workspace", headers={"Authorization": f"Bearer {created['admin_token']}"}
            )
            assert response.json() == {"id": created["workspace_id"], "name": name, "plan": plan}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer tadm_not-a-real-token"},
        {"Authorization": "Bearer something-else"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
def test_requests_without_a_valid_token_get_401(
    settings: Settings, tmp_path: Path, headers: dict[str, str]
) -> None:
    create_workspace(settings, tmp_path, "Acme", "paid")
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/workspace", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "message" in response.json()


def test_only_a_digest_of_the_admin_token_is_stored(settings: Settings, tmp_path: Path) -> None:
    created = create_workspace(settings, tmp_path, "Acme", "paid")
    database_file = Path(settings.database_url.removeprefix("sqlite:///"))
    for path in database_file.parent.glob(database_file.name + "*"):
        assert created["admin_token"].encode() not in path.read_bytes()


def test_an_unknown_plan_is_refused(settings: Settings, tmp_path: Path) -> None:
    result = run_cli(
        "workspace", "create", "--name", "Acme", "--plan", "gold",
        database_url=settings.database_url, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "invalid choice: 'gold'" in result.stderr


def test_a_blank_name_is_refused(settings: Settings, tmp_path: Path) -> None:
    result = run_cli(
        "workspace", "create", "--name", "  ", "--plan", "paid",
        database_url=settings.database_url, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == "truffle-ashby: a workspace needs a name"


def test_an_unmigrated_database_gets_a_one_line_instruction(tmp_path: Path) -> None:
    result = run_cli(
        "workspace", "create", "--name", "Acme", "--plan", "paid",
        database_url=f"sqlite:///{tmp_path / 'empty.db'}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "run `truffle-ashby migrate`" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_then_create_on_the_default_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TRUFFLE_SECRET_KEYS")}
    for args in (["migrate"], ["workspace", "create", "--name", "Acme", "--plan", "trial"]):
        result = subprocess.run(
            [sys.executable, "-m", "tools.cli", *args],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert (tmp_path / ".data" / "truffle.db").exists()


def test_api_refuses_to_start_without_secret_keys(tmp_path: Path, settings: Settings) -> None:
    result = run_cli("api", "--port", "1", database_url=settings.database_url, cwd=tmp_path)
    assert result.returncode == 2
    assert "TRUFFLE_SECRET_KEYS is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_api_refuses_an_unmigrated_database_in_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
        "TRUFFLE_SECRET_KEYS": generate_secret_key(),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tools.cli", "api", "--port", "1"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "run `truffle-ashby migrate`" in result.stderr
    assert "Traceback" not in result.stderr


def test_api_with_two_processes_serves_and_logs_json_from_each(
    tmp_path: Path, settings: Settings
) -> None:
    """Two API processes share the public port and the operator port; the public one serves
    no operator endpoint; a PUBLIC_BASE_URL in plain http off this machine is warned of once."""
    assert settings.truffle_secret_keys is not None
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "TRUFFLE_SECRET_KEYS": settings.truffle_secret_keys.get_secret_value(),
        "PUBLIC_BASE_URL": "http://truffle.example",
        "LOG_FORMAT": "json",
    }
    log = tmp_path / "api.log"
    with log.open("wb") as output:
        api = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "api", "--port", str(port), "--workers", "2",
             "--metrics-port", str(metrics_port)],
            env=env, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    public, operator = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
    try:
        wait_for_http(f"{public}/healthz", api)
        wait_for_http(f"{operator}/healthz", api)
        for _ in range(20):
            assert httpx.get(f"{public}/healthz").status_code == 200
        for path in ("/metrics", "/readyz", "/docs", "/openapi.json"):
            assert httpx.get(f"{public}{path}").status_code == 404, path
        for _ in range(10):
            assert "truffle_http_requests_total" in httpx.get(f"{operator}/metrics").text
        assert httpx.get(f"{operator}/openapi.json").json()["servers"] == [
            {"url": "http://truffle.example"}
        ]
    finally:
        stop_process(api)
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [r for r in records if r.get("logger") == "truffle.api.access"]
    assert len(access) >= 24  # every request logged, whichever process answered it
    assert all(r["request_id"] for r in access)
    assert {r["route"] for r in access} >= {"/healthz"}
    warnings = [r for r in records if "PUBLIC_BASE_URL is plain http" in r.get("message", "")]
    assert len(warnings) == 1
    assert warnings[0]["level"] == "WARNING"
    assert "truffle.example" in warnings[0]["message"]


def sign_in(client: TestClient, admin_token: str) -> None:
    assert client.post("/signin", data={"admin_token": admin_token}).status_code == 303


def test_rotate_token_kills_the_old_token_and_its_sessions_at_once(
    settings: Settings, tmp_path: Path
) -> None:
    acme = create_workspace(settings, tmp_path, "Acme", "paid")
    # Two API processes' worth of apps on one database: the rotation reaches both.
    with (
        TestClient(create_app(settings), follow_redirects=False) as first,
        TestClient(create_app(settings), follow_redirects=False) as second,
    ):
        sign_in(first, acme["admin_token"])
        assert first.get("/api/workspace").status_code == 200

        rotated = run_cli(
            "workspace", "rotate-token", acme["workspace_id"],
            database_url=settings.database_url, cwd=tmp_path,
        )  # fmt: skip
        assert rotated.returncode == 0, rotated.stderr
        printed = json.loads(rotated.stdout)
        assert set(printed) == {"workspace_id", "admin_token"}
        assert printed["workspace_id"] == acme["workspace_id"]
        assert printed["admin_token"] != acme["admin_token"]

        old = {"Authorization": f"Bearer {acme['admin_token']}"}
        new = {"Authorization": f"Bearer {printed['admin_token']}"}
        assert second.get("/api/workspace", headers=old).status_code == 401
        assert first.get("/api/workspace").status_code == 401  # its session ended too
        assert second.get("/api/workspace", headers=new).status_code == 200
        [rotation] = second.get("/api/audit?format=json", headers=new).json()
        assert (rotation["action"], rotation["actor"]) == ("admin_token.rotated", "operator")
        assert printed["admin_token"] not in json.dumps(rotation)


def test_rotate_token_of_an_unknown_workspace_says_so_in_one_line(
    settings: Settings, tmp_path: Path
) -> None:
    result = run_cli(
        "workspace", "rotate-token", "00000000-0000-0000-0000-000000000000",
        database_url=settings.database_url, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "truffle-ashby: there is no workspace 00000000-0000-0000-0000-000000000000"
    )


def test_secrets_status_and_rekey_print_json(settings: Settings, tmp_path: Path) -> None:
    assert settings.truffle_secret_keys is not None
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "TRUFFLE_SECRET_KEYS": settings.truffle_secret_keys.get_secret_value(),
    }

    def secrets(command: str) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-m", "tools.cli", "secrets", command],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        printed: dict[str, object] = json.loads(done.stdout)
        return printed

    status = secrets("status")
    assert status["truffle_keys_unknown"] == 0
    # Nothing was ever stored in clear: the codec refuses payloads in clear.
    assert status["screenings_with_plaintext_payloads"] == 0
    assert status["plaintext_payloads_refused"] is True
    assert status["keys"] == [
        {
            "position": 1,
            "fingerprint": status["keys"][0]["fingerprint"],  # type: ignore[index]
            "current": True,
            "sealed_values": 0,
            "truffle_keys": 0,
        }
    ]
    assert secrets("rekey") == {"resealed": 0}


def test_a_development_command_without_the_dev_tools_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools.cli import main

    # As in the production image, which leaves the development tools out.
    monkeypatch.setitem(sys.modules, "tools.devstack", None)

    assert main(["dev"]) == 2

    error = capsys.readouterr().err
    assert error.startswith("truffle-ashby dev: a development command")
    assert "install the dev extra (`pip install -e '.[dev]'`" in error
