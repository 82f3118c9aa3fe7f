"""The one place that connects to Temporal, from Temporal's own environment configuration, as
the SDKs and the `temporal` CLI read it: `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
`TEMPORAL_API_KEY`, `TEMPORAL_TLS`, `TEMPORAL_TLS_CLIENT_CERT_PATH`,
`TEMPORAL_TLS_CLIENT_KEY_PATH`, `TEMPORAL_TLS_SERVER_CA_CERT_PATH`, `TEMPORAL_TLS_SERVER_NAME`,
and a profile from `TEMPORAL_CONFIG_FILE` / `TEMPORAL_PROFILE`. The API, the worker, the CLI
and the dev stack all connect through here.

Precedence is the SDKs': a variable that is set wins over the profile, and the profile over
the defaults (`localhost:7233`, namespace `default`).
"""

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import Runtime

from truffle.settings import Settings

CONNECT_TIMEOUT_SECONDS = 10.0
DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"


class TemporalUnreachableError(RuntimeError):
    """Temporal could not be reached: one line saying where and why."""


class TemporalConfigError(ValueError):
    """Temporal's client configuration cannot be used (an unknown profile, an unreadable file):
    one line naming the setting, never a value read from the file."""


# A TLS file of the profile, the variable that names it, and its key in Temporal's config file.
_TLS_FILES = (
    ("client_cert", "TEMPORAL_TLS_CLIENT_CERT_PATH", "client_cert"),
    ("client_private_key", "TEMPORAL_TLS_CLIENT_KEY_PATH", "client_key"),
    ("server_root_ca_cert", "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "server_ca_cert"),
)


@dataclass(frozen=True)
class TemporalTarget:
    address: str
    namespace: str


def _profile() -> ClientConfigProfile:
    # TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE reach us through `Settings` (which tests and the
    # dev stack may set directly); the profile is read without them so that `Settings` decides.
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE")
    }
    try:
        return ClientConfigProfile.load(override_env_vars=environment)
    except RuntimeError as error:
        # Only the first line: the next ones of a parse error quote the file, API key and all.
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TemporalConfigError(
            f"cannot load Temporal profile {_profile_name()!r} from {_config_file()} "
            f"(TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE): {reason}"
        ) from None


def _profile_name() -> str:
    return os.environ.get("TEMPORAL_PROFILE") or "default"


def _config_file() -> str:
    return os.environ.get("TEMPORAL_CONFIG_FILE") or "Temporal's default config file"


def _check_tls_files(profile: ClientConfigProfile) -> None:
    """Each certificate or key named by a path can be read, or one line says which setting
    names the one that cannot."""
    if profile.tls is None:
        return
    for field, variable, key in _TLS_FILES:
        source = getattr(profile.tls, field)
        if not isinstance(source, Path):
            continue
        try:
            with source.open("rb"):
                pass
        except OSError as error:
            setting = (
                variable
                if os.environ.get(variable)
                else f"tls.{key} of Temporal profile {_profile_name()!r}"
            )
            raise TemporalConfigError(
                f"cannot read {setting} ({source}): {error.strerror or type(error).__name__}"
            ) from None


def _target(settings: Settings, profile: ClientConfigProfile) -> TemporalTarget:
    return TemporalTarget(
        settings.temporal_address or profile.address or DEFAULT_ADDRESS,
        settings.temporal_namespace or profile.namespace or DEFAULT_NAMESPACE,
    )


def temporal_target(settings: Settings) -> TemporalTarget:
    """The address and namespace every process uses."""
    return _target(settings, _profile())


def connect_config(settings: Settings) -> dict[str, Any]:
    """`Client.connect` keyword arguments: the address and namespace of `temporal_target`, and
    TLS, mTLS, the API key and profiles from Temporal's own variables and config file. Raises
    `TemporalConfigError` when that configuration cannot be used."""
    profile = _profile()
    _check_tls_files(profile)
    target = _target(settings, profile)
    config: dict[str, Any] = dict(profile.to_client_connect_config())
    config["target_host"] = target.address
    config["namespace"] = target.namespace
    return config


async def connect_temporal(
    settings: Settings, runtime: Runtime | None = None, converter: DataConverter | None = None
) -> Client:
    """A client, on `runtime` when given (the one that exports the SDK's metrics), with
    `converter` when given (the API's and the worker's encrypt every payload: see
    truffle/security/payload_crypto.py)."""
    config = connect_config(settings)
    if converter is not None:
        config["data_converter"] = converter
    try:
        return await asyncio.wait_for(
            Client.connect(**config, runtime=runtime), CONNECT_TIMEOUT_SECONDS
        )
    except (RuntimeError, TimeoutError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TemporalUnreachableError(
            f"cannot reach Temporal at {config.get('target_host')} "
            f"(namespace {config.get('namespace')}): {reason}"
        ) from None
