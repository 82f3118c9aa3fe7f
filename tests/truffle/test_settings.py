import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.utils.settings import ALL_VARIABLES, TEMPORAL_CLIENT_VARIABLES
from truffle.settings import MissingSecretKeysError, Settings, generate_secret_key


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_the_settings_class_holds_exactly_the_documented_variables() -> None:
    assert sorted(name.upper() for name in Settings.model_fields) == sorted(ALL_VARIABLES)


def documented_configuration_variables() -> set[str]:
    """The variables named in the first column of the Settings table of docs/configuration.md."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    section = page.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_the_documented_settings_table_is_every_setting_and_temporals_own() -> None:
    settings = {name.upper() for name in Settings.model_fields}
    assert documented_configuration_variables() == settings | TEMPORAL_CLIENT_VARIABLES


def test_defaults_are_the_documented_local_defaults() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite:///.data/truffle.db"
    # Unset: the Temporal profile's, else localhost:7233 / default (test_temporal_connection.py).
    assert (settings.temporal_address, settings.temporal_namespace) == (None, None)
    assert settings.temporal_task_queue == "screenings"
    assert settings.ashby_api_base_url == "https://api.ashbyhq.com"
    assert settings.public_base_url == "http://localhost:8000"
    assert (settings.smtp_host, settings.smtp_port) == ("localhost", 1025)
    assert settings.smtp_from == "screening@truffle.local"
    assert settings.truffle_secret_keys is None


def test_every_variable_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_secret_key()
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.internal/truffle")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "prod")
    monkeypatch.setenv("TEMPORAL_TASK_QUEUE", "screenings-prod")
    monkeypatch.setenv("ASHBY_API_BASE_URL", "http://sandbox:8100/")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://truffle.example/")
    monkeypatch.setenv("SMTP_HOST", "mail")
    monkeypatch.setenv("SMTP_PORT", "2525")
    monkeypatch.setenv("SMTP_FROM", "hello@truffle.example")
    monkeypatch.setenv("TRUFFLE_SECRET_KEYS", key)
    settings = Settings()
    assert settings.database_url == "postgresql://db.internal/truffle"
    assert settings.temporal_address == "temporal:7233"
    assert settings.temporal_namespace == "prod"
    assert settings.temporal_task_queue == "screenings-prod"
    assert settings.ashby_api_base_url == "http://sandbox:8100"
    assert settings.public_base_url == "https://truffle.example"
    assert (settings.smtp_host, settings.smtp_port) == ("mail", 2525)
    assert settings.smtp_from == "hello@truffle.example"
    assert len(settings.secret_keys()) == 1


def test_secret_keys_are_required_by_production_processes() -> None:
    with pytest.raises(MissingSecretKeysError, match="TRUFFLE_SECRET_KEYS is not set"):
        Settings().secret_keys()


def test_secret_keys_keep_their_order_current_first(monkeypatch: pytest.MonkeyPatch) -> None:
    current, older = generate_secret_key(), generate_secret_key()
    monkeypatch.setenv("TRUFFLE_SECRET_KEYS", f"{current}, {older}")
    keys = Settings().secret_keys()
    assert len(keys) == 2
    assert all(len(key) == 32 for key in keys)
    assert keys[0] != keys[1]


@pytest.mark.parametrize(
    "value",
    ["short", "", "a,,b", generate_secret_key() + ",nope"],
    ids=["short", "empty", "empty-between", "one-good-one-bad"],
)
def test_malformed_secret_keys_are_rejected(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TRUFFLE_SECRET_KEYS", value)
    with pytest.raises(ValidationError):
        Settings()


def test_secret_keys_never_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_secret_key()
    monkeypatch.setenv("TRUFFLE_SECRET_KEYS", key)
    settings = Settings()
    assert key not in repr(settings)
    assert key not in str(settings.model_dump())


@pytest.mark.parametrize("name", ["ASHBY_API_BASE_URL", "PUBLIC_BASE_URL"])
def test_base_urls_must_be_http(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "ftp://example.com")
    with pytest.raises(ValidationError, match="http"):
        Settings()


def test_smtp_port_must_be_a_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PORT", "70000")
    with pytest.raises(ValidationError):
        Settings()


def test_the_sticky_cache_holds_the_sdks_thousand_workflows_unless_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().worker_sticky_cache_size == 1000
    monkeypatch.setenv("WORKER_STICKY_CACHE_SIZE", "0")
    assert Settings().worker_sticky_cache_size == 0
    monkeypatch.setenv("WORKER_STICKY_CACHE_SIZE", "-1")
    with pytest.raises(ValidationError) as refused:
        Settings()
    # What `truffle-ashby` prints in its one line (tools/cli.py): the setting and why.
    [error] = refused.value.errors()
    assert error["loc"] == ("worker_sticky_cache_size",)
    assert error["msg"] == "Input should be greater than or equal to 0"


@pytest.mark.parametrize(
    ("host", "chosen", "used"),
    [
        ("localhost", None, "none"),
        ("127.0.0.1", None, "none"),
        ("::1", None, "none"),
        ("smtp.relay.example", None, "starttls"),
        ("10.0.0.5", None, "starttls"),
        ("smtp.relay.example", "none", "none"),
        ("smtp.relay.example", "tls", "tls"),
    ],
)
def test_mail_leaves_this_machine_only_encrypted_unless_none_is_chosen(
    host: str, chosen: str | None, used: str
) -> None:
    settings = Settings(smtp_host=host, smtp_security=chosen)
    assert settings.smtp_transport_security() == used


def test_smtp_security_accepts_only_the_three_words() -> None:
    with pytest.raises(ValidationError):
        Settings(smtp_security="ssl")
