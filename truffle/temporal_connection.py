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
    return ClientConfigProfile.load(override_env_vars=environment)


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
    TLS, mTLS, the API key and profiles from Temporal's own variables and config file."""
    profile = _profile()
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
    truffle/payload_crypto.py)."""
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
