"""Connecting to Temporal as the SDKs do: TLS, mTLS, an API key and profiles from Temporal's
own variables and config file; a wrong address fails fast with one clear line."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from truffle.runtime.temporal_connection import TemporalConfigError, connect_config, temporal_target
from truffle.settings import Settings

TEMPORAL_VARIABLES = (
    "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_TLS",
    "TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_SERVER_NAME",
    "TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TEMPORAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_an_api_key_and_tls_reach_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_API_KEY", "cloud-api-key")
    monkeypatch.setenv("TEMPORAL_TLS", "true")
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_NAME", "acme.tmprl.cloud")
    settings = Settings(temporal_address="acme.a1b2c.tmprl.cloud:7233", temporal_namespace="acme")

    config = connect_config(settings)

    assert config["target_host"] == "acme.a1b2c.tmprl.cloud:7233"
    assert config["namespace"] == "acme"
    assert config["api_key"] == "cloud-api-key"
    assert config["tls"].domain == "acme.tmprl.cloud"


def test_mtls_certificates_are_read_from_their_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = {"cert": b"CLIENT CERT", "key": b"CLIENT KEY", "ca": b"SERVER CA"}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(tmp_path / "cert"))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(tmp_path / "key"))
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", str(tmp_path / "ca"))

    tls = connect_config(Settings())["tls"]

    assert (tls.client_cert, tls.client_private_key, tls.server_root_ca_cert) == (
        b"CLIENT CERT", b"CLIENT KEY", b"SERVER CA",
    )  # fmt: skip


def test_a_profile_from_temporals_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config_file = tmp_path / "temporal.toml"
    config_file.write_text(
        '[profile.prod]\naddress = "prod.tmprl.example:7233"\nnamespace = "prod.a1b2c"\n'
        'api_key = "from-the-profile"\n[profile.prod.tls]\n'
    )
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("TEMPORAL_PROFILE", "prod")

    config = connect_config(Settings())

    assert config["target_host"] == "prod.tmprl.example:7233"
    assert config["namespace"] == "prod.a1b2c"
    assert config["api_key"] == "from-the-profile"
    assert config["tls"] is not None
    assert temporal_target(Settings()).namespace == "prod.a1b2c"


def test_temporal_address_and_namespace_win_over_the_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config_file = tmp_path / "temporal.toml"
    config_file.write_text(
        '[profile.prod]\naddress = "prod.tmprl.example:7233"\nnamespace = "prod.a1b2c"\n'
    )
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("TEMPORAL_PROFILE", "prod")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "staging")

    config = connect_config(Settings())

    assert (config["target_host"], config["namespace"]) == ("temporal.internal:7233", "staging")


def test_without_variables_or_a_profile_the_defaults_apply(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "none.toml"))

    config = connect_config(Settings())

    assert (config["target_host"], config["namespace"]) == ("localhost:7233", "default")


def test_a_worker_pointed_at_the_wrong_address_fails_fast_with_one_clear_line(
    settings: Settings, tmp_path: Path
) -> None:
    assert settings.truffle_secret_keys is not None
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "TRUFFLE_SECRET_KEYS": settings.truffle_secret_keys.get_secret_value(),
        "TEMPORAL_ADDRESS": "127.0.0.1:9",
    }
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", "worker"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode == 2
    assert time.monotonic() - began < 20
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(
        "truffle-ashby: cannot reach Temporal at 127.0.0.1:9 (namespace default)"
    )


def _run_cli(settings: Settings, cwd: Path, command: str, **variables: str) -> tuple[int, str]:
    assert settings.truffle_secret_keys is not None
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "TRUFFLE_SECRET_KEYS": settings.truffle_secret_keys.get_secret_value(),
        **variables,
    }
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", command],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.returncode, done.stderr


def test_a_worker_given_an_unknown_profile_fails_fast_with_one_clear_line(
    settings: Settings, tmp_path: Path
) -> None:
    config_file = tmp_path / "temporal.toml"
    config_file.write_text('[profile.prod]\napi_key = "secret-api-key"\n')

    code, stderr = _run_cli(
        settings, tmp_path, "worker",
        TEMPORAL_CONFIG_FILE=str(config_file), TEMPORAL_PROFILE="staging",
    )  # fmt: skip

    assert code == 2
    assert "Traceback" not in stderr
    assert "secret-api-key" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"truffle-ashby: cannot load Temporal profile 'staging' from {config_file} "
        "(TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE): Profile 'staging' not found"
    )


def test_the_api_given_an_unreadable_tls_file_fails_fast_naming_the_variable(
    settings: Settings, tmp_path: Path
) -> None:
    missing = tmp_path / "missing-client.pem"

    code, stderr = _run_cli(
        settings, tmp_path, "api",
        TEMPORAL_TLS_CLIENT_CERT_PATH=str(missing),
        TEMPORAL_TLS_CLIENT_KEY_PATH=str(tmp_path / "missing-client.key"),
    )  # fmt: skip

    assert code == 2
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"truffle-ashby: cannot read TEMPORAL_TLS_CLIENT_CERT_PATH ({missing}): "
        "No such file or directory"
    )


def test_a_tls_file_named_by_the_profile_is_named_as_the_profiles(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config_file = tmp_path / "temporal.toml"
    config_file.write_text(
        f'[profile.prod.tls]\nserver_ca_cert_path = "{tmp_path / "missing-ca.pem"}"\n'
    )
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("TEMPORAL_PROFILE", "prod")

    with pytest.raises(TemporalConfigError, match=r"^cannot read tls.server_ca_cert of Temporal"):
        connect_config(Settings())


def test_a_config_file_that_does_not_parse_is_reported_without_its_content(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config_file = tmp_path / "temporal.toml"
    config_file.write_text('[profile.prod]\napi_key = "secret-api-key\n')
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("TEMPORAL_PROFILE", "prod")

    with pytest.raises(TemporalConfigError) as raised:
        connect_config(Settings())

    assert "TOML parse error at line 2" in str(raised.value)
    assert "secret-api-key" not in str(raised.value)
    assert "\n" not in str(raised.value)
