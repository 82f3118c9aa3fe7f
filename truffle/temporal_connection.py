"""The one place that connects to Temporal, from Temporal's own environment configuration, as
the SDKs and the `temporal` CLI read it: `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
`TEMPORAL_API_KEY`, `TEMPORAL_TLS`, `TEMPORAL_TLS_CLIENT_CERT_PATH`,
`TEMPORAL_TLS_CLIENT_KEY_PATH`, `TEMPORAL_TLS_SERVER_CA_CERT_PATH`, `TEMPORAL_TLS_SERVER_NAME`,
and a profile from `TEMPORAL_CONFIG_FILE` / `TEMPORAL_PROFILE`. The API, the worker, the CLI
and the dev stack all connect through here.
"""

import asyncio
import os
from typing import Any

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import Runtime

from truffle.settings import Settings

CONNECT_TIMEOUT_SECONDS = 10.0


class TemporalUnreachableError(RuntimeError):
    """Temporal could not be reached: one line saying where and why."""


def connect_config(settings: Settings) -> dict[str, Any]:
    """`Client.connect` keyword arguments. The address and namespace come from `Settings`
    (which read `TEMPORAL_ADDRESS` and `TEMPORAL_NAMESPACE` with their defaults); TLS, mTLS,
    the API key and profiles come from Temporal's own variables and config file."""
    profile = ClientConfigProfile.load(
        override_env_vars={
            **os.environ,
            "TEMPORAL_ADDRESS": settings.temporal_address,
            "TEMPORAL_NAMESPACE": settings.temporal_namespace,
        }
    )
    return dict(profile.to_client_connect_config())


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
