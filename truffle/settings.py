"""Every configurable value of the service, read once from the environment."""

import base64
import binascii
import ipaddress
import re
import secrets
from datetime import timedelta
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from limits import parse
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from truffle.contracts import HELD_UPDATE_RETENTION

SECRET_KEY_BYTES = 32
_DURATION = re.compile(r"(?P<count>\d+)\s*(?P<unit>[smhd]?)")
_DURATIONS = (
    "reconcile_interval",
    "worker_shutdown_grace",
    "held_update_retention",
    "session_lifetime",
    "session_idle_timeout",
    "report_link_lifetime",
)
_UNITS = {"": "seconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class MissingSecretKeysError(RuntimeError):
    """Raised when a production process starts without TRUFFLE_SECRET_KEYS."""


def generate_secret_key() -> str:
    """A new secret key in the format TRUFFLE_SECRET_KEYS expects (url-safe base64 of 32 bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(SECRET_KEY_BYTES)).decode()


def decode_secret_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != SECRET_KEY_BYTES:
        raise ValueError(
            "each TRUFFLE_SECRET_KEYS entry must be url-safe base64 of 32 random bytes "
            "(generate one with `python -c 'import secrets,base64;"
            "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'`)"
        )
    return raw


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    database_url: str = "sqlite:///.data/truffle.db"
    # Unset: the `TEMPORAL_PROFILE`'s (from `TEMPORAL_CONFIG_FILE`), else `localhost:7233` and
    # `default`, as Temporal's SDKs resolve them (truffle/runtime/temporal_connection.py).
    temporal_address: str | None = None
    temporal_namespace: str | None = None
    temporal_task_queue: str = "screenings"
    ashby_api_base_url: str = "https://api.ashbyhq.com"
    public_base_url: str = "http://localhost:8000"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_from: str = "screening@truffle.local"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # `starttls` (required), `tls` (implicit TLS, usually port 465) or `none`. Unset: `none` for
    # a server on this machine, `starttls` for any other: never clear text across a network
    # unless `none` is chosen explicitly.
    smtp_security: Literal["starttls", "tls", "none"] | None = None
    truffle_secret_keys: SecretStr | None = None
    # How often the reconciler looks for screenings whose workflow is not running.
    reconcile_interval: timedelta = timedelta(minutes=5)
    # How long an update held for the connection waits before the screening closes without it.
    held_update_retention: timedelta = HELD_UPDATE_RETENTION
    # How long a report link (`/r/{token}`, what Ashby links to) opens the report after it is
    # issued; an admin issues a new one from the screening's page.
    report_link_lifetime: timedelta = timedelta(days=180)
    # An admin's browser session ends this long after sign-in, or after this long unused.
    session_lifetime: timedelta = timedelta(hours=12)
    session_idle_timeout: timedelta = timedelta(minutes=30)
    # Abuse limits, in the `limits` notation: per workspace, per workspace, per client address.
    # Starts admit a bulk send from Ashby of 5,000 candidates at once (a moving window, so
    # the whole window is a burst) and still stop a caller stuck in a loop.
    rate_limit_assessment_start: str = "6000/10 minutes"
    rate_limit_connect: str = "30/hour"
    rate_limit_signin: str = "20/minute"
    # Addresses or networks (comma-separated: `127.0.0.1`, `172.30.80.0/28`) of the reverse
    # proxies whose X-Forwarded-For the API believes for the client's address (per-client
    # limits, logs). Name the proxies only: with `*` the API would believe whatever address a
    # client wrote into the header first.
    forwarded_allow_ips: str = "127.0.0.1"
    # Outbound: at most this many calls to Ashby per workspace, from each worker process.
    ashby_rate_limit_per_workspace: str = "50/second"
    # `json` (one object per line) outside `truffle-ashby dev`, which sets `text`.
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # The worker's Prometheus `/metrics`, `/healthz` and `/readyz`.
    metrics_port: int = Field(default=9464, ge=1, le=65535)
    # Threads (and database connections) a worker does its database work on: the event loop
    # never waits on the database.
    worker_activity_threads: int = Field(default=16, ge=1, le=512)
    # Threads each process's payload codec reads screening keys on, apart from the activities'
    # threads, so a busy database never holds a workflow activation up behind them.
    codec_threads: int = Field(default=4, ge=1, le=64)
    # Workflows a worker keeps in memory between their tasks (the SDK's sticky cache, 1,000 by
    # default): what bounds its memory however many screenings are open. One evicted and woken
    # (a reminder, the candidate's Begin) is replayed from its history first; 0 keeps none.
    worker_sticky_cache_size: int = Field(default=1000, ge=0)
    # How long a stopping worker lets running activities (a post to Ashby, an email) finish.
    worker_shutdown_grace: timedelta = timedelta(seconds=30)
    # The Temporal UI's origins (comma-separated, e.g. `https://temporal.example.com`) allowed
    # to call the codec endpoint (`/codec/decode`) from the browser; none by default.
    temporal_ui_origins: str = ""

    @property
    def https(self) -> bool:
        """Whether the site is served over https (`PUBLIC_BASE_URL`): HSTS, `Secure` cookies."""
        return self.public_base_url.startswith("https://")

    def plain_http_off_this_machine(self) -> bool:
        """`PUBLIC_BASE_URL` is plain http on a host other than this machine: sessions and
        screener links would cross a network in clear."""
        if self.https:
            return False
        host = urlsplit(self.public_base_url).hostname or ""
        return not (_is_this_machine(host) or host.endswith(".localhost"))

    @property
    def ui_origins(self) -> frozenset[str]:
        return frozenset(
            origin.strip().rstrip("/")
            for origin in self.temporal_ui_origins.split(",")
            if origin.strip()
        )

    @field_validator("smtp_security", "smtp_username", "smtp_password", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """Compose passes an unset `${SMTP_USERNAME:-}` as "": no login, the default security."""
        return None if value == "" else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "rate_limit_assessment_start",
        "rate_limit_connect",
        "rate_limit_signin",
        "ashby_rate_limit_per_workspace",
    )
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError:
            raise ValueError("must be a rate such as 600/minute, 30/hour or 5/second") from None
        return value

    @field_validator(*_DURATIONS, mode="before")
    @classmethod
    def _parse_duration(cls, value: object) -> object:
        """`30s`, `5m`, `2h`, `30d` (or anything pydantic reads as a duration)."""
        if isinstance(value, str):
            match = _DURATION.fullmatch(value.strip())
            if match:
                return timedelta(**{_UNITS[match["unit"]]: int(match["count"])})
        return value

    @field_validator(*_DURATIONS)
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration such as 30s, 5m, 2h or 30d")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        for entry in entries:
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (such as 10.0.0.2 or "
                    "172.30.80.0/28)"
                ) from None
        return ",".join(entries)

    @field_validator("ashby_api_base_url", "public_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("truffle_secret_keys")
    @classmethod
    def _check_secret_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        entries = [entry.strip() for entry in value.get_secret_value().split(",")]
        if not entries or any(not entry for entry in entries):
            raise ValueError("TRUFFLE_SECRET_KEYS must be a comma-separated list of keys")
        for entry in entries:
            decode_secret_key(entry)
        return SecretStr(",".join(entries))

    def smtp_transport_security(self) -> str:
        if self.smtp_security is not None:
            return self.smtp_security
        return "none" if _is_this_machine(self.smtp_host) else "starttls"

    def secret_keys(self) -> list[bytes]:
        """The decoded secret keys, current first. Production processes cannot run without them."""
        if self.truffle_secret_keys is None:
            raise MissingSecretKeysError(
                "TRUFFLE_SECRET_KEYS is not set: production processes need it "
                "(`truffle-ashby dev` generates one into .data/ for local use)"
            )
        return [
            decode_secret_key(entry)
            for entry in self.truffle_secret_keys.get_secret_value().split(",")
        ]


def _is_this_machine(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
