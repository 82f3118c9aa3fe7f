"""Everything the sandbox remembers, in memory, behind one asyncio lock.

Nothing survives a restart: the sandbox stands in for Ashby in tests and demos, where a clean
slate is what every run wants.
"""

import asyncio
import contextlib
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

DEFAULT_SCOPES = ("apiKeysRead", "candidatesWrite")
_CROCKFORD_BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_z(moment: datetime) -> str:
    """Ashby's timestamp format: ISO 8601 in UTC with milliseconds and a `Z`."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def new_request_id() -> str:
    """A ULID (48-bit millisecond time, 80 random bits), the shape of Ashby's request ids."""
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    return "".join(_CROCKFORD_BASE32[(value >> shift) & 31] for shift in range(125, -1, -5))


class FaultKind(StrEnum):
    rate_limit = "rate_limit"
    server_error = "server_error"
    delay = "delay"
    unauthorized = "unauthorized"
    forbidden = "forbidden"
    # Ashby refuses the request itself: HTTP 200 with `success: false` (`invalid_input`).
    invalid_input = "invalid_input"


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    count: int
    retry_after_seconds: int = 1
    delay_seconds: float = 0.0
    partner_scope: bool = False


@dataclass
class ApiKey:
    id: str
    secret: str
    title: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None
    faults: deque[Fault] = field(default_factory=deque)


@dataclass(frozen=True)
class ApiKeySnapshot:
    """What a request needs of a key, copied out so it can be read without the lock."""

    id: str
    title: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked: bool


@dataclass(frozen=True)
class RecordedUpdate:
    assessment_id: str
    received_at: datetime
    api_key_id: str
    stale: bool
    body: dict[str, Any]


@dataclass(frozen=True)
class RecordedCall:
    endpoint: str
    api_key_id: str | None
    http_status: int
    success: bool
    error_code: str | None
    request_id: str
    at: datetime


@dataclass(frozen=True)
class PartnerConfig:
    base_url: str
    truffle_api_key: str


@dataclass(frozen=True)
class PartnerCall:
    method: str
    status_code: int | None
    at: datetime


class UnknownApiKeyError(LookupError):
    """No key has the given id."""


class SandboxState:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        # Notified, under the lock, whenever an update is recorded.
        self._recorded = asyncio.Condition(self._lock)
        self._keys: dict[str, ApiKey] = {}
        self._key_ids_by_secret: dict[str, str] = {}
        self._updates: list[RecordedUpdate] = []
        self._latest_timestamps: dict[str, int] = {}
        self._calls: list[RecordedCall] = []
        self._partner: PartnerConfig | None = None
        self._partner_calls: list[PartnerCall] = []

    async def reset(self) -> None:
        async with self._lock:
            self._keys.clear()
            self._key_ids_by_secret.clear()
            self._updates.clear()
            self._latest_timestamps.clear()
            self._calls.clear()
            self._partner = None
            self._partner_calls.clear()

    async def create_key(self, title: str, scopes: tuple[str, ...]) -> ApiKey:
        key = ApiKey(
            id=str(uuid.uuid4()),
            secret=secrets.token_urlsafe(32),
            title=title,
            scopes=scopes,
            created_at=utc_now(),
        )
        async with self._lock:
            self._keys[key.id] = key
            self._key_ids_by_secret[key.secret] = key.id
        return key

    async def keys(self) -> list[ApiKey]:
        async with self._lock:
            return list(self._keys.values())

    async def revoke_key(self, key_id: str) -> ApiKey:
        async with self._lock:
            key = self._key(key_id)
            if key.revoked_at is None:
                key.revoked_at = utc_now()
            return key

    async def queue_fault(self, key_id: str, fault: Fault) -> list[Fault]:
        async with self._lock:
            key = self._key(key_id)
            key.faults.append(fault)
            return list(key.faults)

    async def clear_faults(self, key_id: str) -> None:
        async with self._lock:
            self._key(key_id).faults.clear()

    async def identify(self, secret: str) -> tuple[ApiKeySnapshot | None, Fault | None]:
        """The key a call presents, and the fault it triggers, which this call uses up."""
        async with self._lock:
            key_id = self._key_ids_by_secret.get(secret)
            if key_id is None:
                return None, None
            key = self._keys[key_id]
            snapshot = ApiKeySnapshot(
                id=key.id,
                title=key.title,
                scopes=key.scopes,
                created_at=key.created_at,
                revoked=key.revoked_at is not None,
            )
            if not key.faults:
                return snapshot, None
            fault = key.faults[0]
            if fault.count == 1:
                key.faults.popleft()
            else:
                key.faults[0] = replace(fault, count=fault.count - 1)
            return snapshot, fault

    async def record_update(
        self, assessment_id: str, timestamp: int, api_key_id: str, body: dict[str, Any]
    ) -> RecordedUpdate:
        """Keeps every accepted update; one not newer than the last for its assessment is
        marked stale, as Ashby ignores updates that arrive out of order."""
        async with self._lock:
            latest = self._latest_timestamps.get(assessment_id)
            stale = latest is not None and timestamp <= latest
            if not stale:
                self._latest_timestamps[assessment_id] = timestamp
            update = RecordedUpdate(
                assessment_id=assessment_id,
                received_at=utc_now(),
                api_key_id=api_key_id,
                stale=stale,
                body=body,
            )
            self._updates.append(update)
            self._recorded.notify_all()
            return update

    async def updates(
        self, assessment_id: str | None = None, at_least: int = 0, wait: float = 0.0
    ) -> list[RecordedUpdate]:
        """The recorded updates (of one assessment); with `wait`, once there are `at_least`
        of them or after `wait` seconds, whichever comes first."""

        def matching() -> list[RecordedUpdate]:
            return [
                update
                for update in self._updates
                if assessment_id is None or update.assessment_id == assessment_id
            ]

        async with self._recorded:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._recorded.wait_for(lambda: len(matching()) >= at_least), wait
                )
            return matching()

    async def record_call(self, call: RecordedCall) -> None:
        async with self._lock:
            self._calls.append(call)

    async def calls(self) -> list[RecordedCall]:
        async with self._lock:
            return list(self._calls)

    async def configure_partner(self, config: PartnerConfig) -> None:
        async with self._lock:
            self._partner = config

    async def partner(self) -> PartnerConfig | None:
        async with self._lock:
            return self._partner

    async def record_partner_call(self, call: PartnerCall) -> None:
        async with self._lock:
            self._partner_calls.append(call)

    async def partner_calls(self) -> list[PartnerCall]:
        async with self._lock:
            return list(self._partner_calls)

    def _key(self, key_id: str) -> ApiKey:
        key = self._keys.get(key_id)
        if key is None:
            raise UnknownApiKeyError(key_id)
        return key
