import uuid

import pytest

from truffle.security.secrets import DecryptionError, KeyRing, parse_truffle_key
from truffle.settings import decode_secret_key, generate_secret_key


def keyring(*keys: str) -> KeyRing:
    return KeyRing([decode_secret_key(key) for key in keys])


def test_a_truffle_key_has_a_prefix_an_id_256_random_bits_and_a_checksum() -> None:
    minted = keyring(generate_secret_key()).mint_truffle_key()
    prefix, key_id, secret, checksum = minted.full_key.split("_")
    assert prefix == "trk"
    assert key_id == minted.key_id
    assert len(key_id) == 16
    assert len(secret) == 52  # base32: 52 characters carry 260 bits, 256 of them random
    assert len(checksum) == 8
    parsed = parse_truffle_key(minted.full_key)
    assert parsed is not None
    assert parsed.key_id == minted.key_id


def test_every_minted_key_is_different() -> None:
    ring = keyring(generate_secret_key())
    keys = {ring.mint_truffle_key().full_key for _ in range(200)}
    assert len(keys) == 200


def test_a_mistyped_key_fails_its_checksum() -> None:
    full_key = keyring(generate_secret_key()).mint_truffle_key().full_key
    position = 30
    typo = "a" if full_key[position] != "a" else "b"
    mistyped = full_key[:position] + typo + full_key[position + 1 :]
    assert parse_truffle_key(mistyped) is None


@pytest.mark.parametrize(
    "candidate", ["", "trk", "trk_a_b_c", "sk_live_123", "trk__" + "a" * 52 + "_00000000"]
)
def test_malformed_keys_are_refused_before_any_lookup(candidate: str) -> None:
    assert parse_truffle_key(candidate) is None


def test_only_the_right_key_matches_the_stored_digest() -> None:
    ring = keyring(generate_secret_key())
    minted, other = ring.mint_truffle_key(), ring.mint_truffle_key()
    assert minted.full_key not in minted.digest
    parsed, parsed_other = parse_truffle_key(minted.full_key), parse_truffle_key(other.full_key)
    assert parsed is not None
    assert parsed_other is not None
    assert ring.truffle_key_matches(parsed, minted.digest)
    assert not ring.truffle_key_matches(parsed_other, minted.digest)


def test_the_digest_depends_on_the_server_side_pepper() -> None:
    minted = keyring(generate_secret_key()).mint_truffle_key()
    parsed = parse_truffle_key(minted.full_key)
    assert parsed is not None
    assert not keyring(generate_secret_key()).truffle_key_matches(parsed, minted.digest)


def test_keys_minted_before_a_secret_key_rotation_still_verify() -> None:
    old, new = generate_secret_key(), generate_secret_key()
    minted = keyring(old).mint_truffle_key()
    parsed = parse_truffle_key(minted.full_key)
    assert parsed is not None
    assert keyring(new, old).truffle_key_matches(parsed, minted.digest)


def test_the_ashby_key_round_trips_and_is_not_stored_in_clear() -> None:
    ring, workspace_id = keyring(generate_secret_key()), uuid.uuid4()
    stored = ring.seal("ashby-secret-value", workspace_id)
    assert "ashby-secret-value" not in stored
    assert ring.unseal(stored, workspace_id) == "ashby-secret-value"


def test_the_ashby_key_is_bound_to_its_workspace() -> None:
    ring = keyring(generate_secret_key())
    stored = ring.seal("ashby-secret-value", uuid.uuid4())
    with pytest.raises(DecryptionError):
        ring.unseal(stored, uuid.uuid4())


def test_older_secret_keys_still_decrypt_and_the_current_one_encrypts() -> None:
    old, new, workspace_id = generate_secret_key(), generate_secret_key(), uuid.uuid4()
    stored_before = keyring(old).seal("ashby-secret-value", workspace_id)
    rotated = keyring(new, old)
    assert rotated.unseal(stored_before, workspace_id) == "ashby-secret-value"
    stored_after = rotated.seal("ashby-secret-value", workspace_id)
    with pytest.raises(DecryptionError):
        keyring(old).unseal(stored_after, workspace_id)


def test_a_tampered_ciphertext_is_refused() -> None:
    ring, workspace_id = keyring(generate_secret_key()), uuid.uuid4()
    stored = ring.seal("ashby-secret-value", workspace_id)
    tampered = stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB")
    with pytest.raises(DecryptionError):
        ring.unseal(tampered, workspace_id)
