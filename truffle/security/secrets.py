"""Truffle keys (what Ashby calls us with) and encryption of the Ashby key at rest.

A Truffle key reads `trk_<key id>_<secret>_<checksum>`:
- the key id (64 random bits, hex) finds the key's row without touching the secret;
- the secret carries 256 random bits from `secrets`;
- the checksum (CRC-32 of everything before it) rejects a mistyped key without a query.
Only HMAC-SHA256(pepper, key) is stored, the pepper derived from TRUFFLE_SECRET_KEYS.

Secrets we must read back (the Ashby key, screener link tokens) are sealed with AES-GCM, the
row's id as associated data, so a ciphertext copied to another row does not decrypt.
"""

import base64
import hashlib
import hmac
import secrets
import uuid
import zlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TRUFFLE_KEY_PREFIX = "trk"
_KEY_ID_HEX_LENGTH = 16
_SECRET_BYTES = 32
_SECRET_LENGTH = 52  # base32 of 32 bytes, unpadded
_CHECKSUM_LENGTH = 8
_CIPHERTEXT_VERSION = "v1"


class DecryptionError(Exception):
    """The ciphertext was not made by any current key for this row."""


def _derive(secret_key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key)


@dataclass(frozen=True)
class ParsedTruffleKey:
    key_id: str
    full_key: str


@dataclass(frozen=True)
class MintedTruffleKey(ParsedTruffleKey):
    """A new key with the digest to store; `full_key` is shown once and never stored."""

    digest: str


def _bytes(text: str) -> bytes:
    """Any string a request can carry, as bytes: nothing a client sends can make this raise."""
    return text.encode("utf-8", "surrogatepass")


def same_secret(presented: str, expected: str) -> bool:
    """Constant-time equality of two strings of any characters (never raises)."""
    return hmac.compare_digest(_bytes(presented), _bytes(expected))


def _checksum(body: str) -> str:
    return f"{zlib.crc32(_bytes(body)):08x}"


def parse_truffle_key(candidate: str) -> ParsedTruffleKey | None:
    """The key's id if `candidate` is well formed and its checksum matches; None otherwise."""
    parts = candidate.split("_")
    if len(parts) != 4 or parts[0] != TRUFFLE_KEY_PREFIX:
        return None
    _, key_id, secret, checksum = parts
    if len(key_id) != _KEY_ID_HEX_LENGTH or any(c not in "0123456789abcdef" for c in key_id):
        return None
    if len(secret) != _SECRET_LENGTH or len(checksum) != _CHECKSUM_LENGTH:
        return None
    body = candidate[: -(_CHECKSUM_LENGTH + 1)]
    if not same_secret(_checksum(body), checksum):
        return None
    return ParsedTruffleKey(key_id=key_id, full_key=candidate)


class KeyRing:
    """Everything derived from TRUFFLE_SECRET_KEYS; the first key is current."""

    def __init__(self, secret_keys: list[bytes]) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        self._peppers = [_derive(key, b"truffle-key-pepper") for key in secret_keys]
        self._encryption_keys = [_derive(key, b"ashby-key-encryption") for key in secret_keys]
        self._signing_keys = [_derive(key, b"admin-session-signing") for key in secret_keys]

    # Truffle keys

    def _digest(self, pepper: bytes, full_key: str) -> str:
        return hmac.new(pepper, _bytes(full_key), hashlib.sha256).hexdigest()

    def mint_truffle_key(self) -> MintedTruffleKey:
        key_id = secrets.token_hex(_KEY_ID_HEX_LENGTH // 2)
        secret = base64.b32encode(secrets.token_bytes(_SECRET_BYTES)).decode().rstrip("=").lower()
        body = f"{TRUFFLE_KEY_PREFIX}_{key_id}_{secret}"
        full_key = f"{body}_{_checksum(body)}"
        return MintedTruffleKey(
            key_id=key_id, full_key=full_key, digest=self.current_digest(full_key)
        )

    def truffle_key_matches(self, parsed: ParsedTruffleKey, stored_digest: str) -> bool:
        return self.truffle_key_match(parsed, stored_digest) is not None

    def truffle_key_match(self, parsed: ParsedTruffleKey, stored_digest: str) -> int | None:
        """The position in TRUFFLE_SECRET_KEYS of the pepper the digest was made with, or None.
        Every pepper is tried (no early exit) so the time taken does not say which matched."""
        found: int | None = None
        for index, pepper in enumerate(self._peppers):
            if same_secret(self._digest(pepper, parsed.full_key), stored_digest):
                found = index
        return found

    def current_digest(self, full_key: str) -> str:
        """The digest under the current pepper (to re-digest a key minted under an older one)."""
        return self._digest(self._peppers[0], full_key)

    # Which secret key a stored value depends on

    @property
    def fingerprints(self) -> list[str]:
        """A public name for each key of TRUFFLE_SECRET_KEYS, in order (current first)."""
        return [self._fingerprint(key) for key in self._encryption_keys]

    def sealed_with(self, stored: str) -> str:
        """The fingerprint of the key a sealed value was made with."""
        parts = stored.split(":")
        return parts[1] if len(parts) == 3 else ""

    # Signed values (the admin session cookie)

    def sign(self, message: str) -> str:
        mac = hmac.new(self._signing_keys[0], message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def signature_matches(self, message: str, signature: str) -> bool:
        matched = False
        for key in self._signing_keys:
            mac = hmac.new(key, _bytes(message), hashlib.sha256).digest()
            expected = base64.urlsafe_b64encode(mac).decode().rstrip("=")
            matched |= same_secret(expected, signature)
        return matched

    # Secrets at rest (the Ashby key, screener link tokens), each bound to the row it belongs to

    def encryption_key(self, fingerprint: str | None = None) -> bytes:
        """The current encryption key, or the one with this fingerprint (for keys derived from
        it, such as Temporal payload keys). Raises `DecryptionError` if none has it."""
        if fingerprint is None:
            return self._encryption_keys[0]
        for key in self._encryption_keys:
            if self._fingerprint(key) == fingerprint:
                return key
        raise DecryptionError("no key of TRUFFLE_SECRET_KEYS has this fingerprint")

    def fingerprint_of(self, encryption_key: bytes) -> str:
        return self._fingerprint(encryption_key)

    @staticmethod
    def _fingerprint(encryption_key: bytes) -> str:
        return hashlib.sha256(b"fingerprint" + encryption_key).hexdigest()[:12]

    def seal(self, plaintext: str, bound_to: uuid.UUID) -> str:
        key = self._encryption_keys[0]
        nonce = secrets.token_bytes(12)
        ciphertext = AESGCM(key).encrypt(nonce, plaintext.encode(), bound_to.bytes)
        packed = base64.urlsafe_b64encode(nonce + ciphertext).decode()
        return f"{_CIPHERTEXT_VERSION}:{self._fingerprint(key)}:{packed}"

    def unseal(self, stored: str, bound_to: uuid.UUID) -> str:
        try:
            version, fingerprint, packed = stored.split(":")
            raw = base64.urlsafe_b64decode(packed.encode())
        except ValueError:
            raise DecryptionError("the stored secret is not in a known format") from None
        if version != _CIPHERTEXT_VERSION:
            raise DecryptionError("the stored secret is not in a known format")
        for key in self._encryption_keys:
            if self._fingerprint(key) != fingerprint:
                continue
            try:
                return AESGCM(key).decrypt(raw[:12], raw[12:], bound_to.bytes).decode()
            except InvalidTag:
                break
        raise DecryptionError(
            "the stored secret cannot be decrypted with TRUFFLE_SECRET_KEYS for this row"
        )


def new_screener_token() -> str:
    """The unguessable part of a candidate's screener link (256 random bits)."""
    return secrets.token_urlsafe(_SECRET_BYTES)


def screener_token_digest(token: str) -> str:
    # Like admin tokens: 256 random bits need no pepper, and lookups by digest leak nothing.
    return hashlib.sha256(token.encode()).hexdigest()
