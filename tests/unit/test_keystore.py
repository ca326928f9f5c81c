"""The encrypted keystore: round trips, refusals, and typed errors for every way a file can be wrong."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import base58
import pytest
from nacl.pwhash import argon2id

from autarky.crypto.keys import SigningKey
from autarky.crypto.keystore import (
    DEFAULT_MEMLIMIT,
    DEFAULT_OPSLIMIT,
    INSECURE_WARNING,
    CorruptKeystore,
    KeystoreError,
    KeystoreExists,
    MissingSecret,
    WrongSecret,
    create_keystore,
    load_keystore,
    new_key_file,
    read_public,
)

# The smallest Argon2id costs libsodium allows keep the tests fast; the defaults are tested once.
FAST_OPS, FAST_MEM = argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN
PASSWORD = "correct horse battery staple"


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.from_seed(bytes(range(32)))


def _password_store(path: Path, key: SigningKey) -> Path:
    create_keystore(path, key, password=PASSWORD, label="pump-7", opslimit=FAST_OPS, memlimit=FAST_MEM)
    return path


def _edit(path: Path, change: Any) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- round trips -------------------------------------------------------------------------------------


def test_password_round_trip(tmp_path: Path, key: SigningKey) -> None:
    path = _password_store(tmp_path / "id.json", key)
    loaded = load_keystore(path, password=PASSWORD)
    assert loaded.seed == key.seed
    assert loaded.did == key.did
    info = read_public(path)
    assert (info.did, info.public_key) == (key.did, key.public_key)
    assert (info.kdf, info.label) == ("argon2id", "pump-7")
    assert not info.insecure


def test_password_default_costs_are_recorded(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "id.json"
    create_keystore(path, key, password=PASSWORD)
    params = json.loads(path.read_text())["crypto"]["kdf_params"]
    assert (params["opslimit"], params["memlimit"]) == (DEFAULT_OPSLIMIT, DEFAULT_MEMLIMIT)
    assert DEFAULT_OPSLIMIT == argon2id.OPSLIMIT_INTERACTIVE
    assert DEFAULT_MEMLIMIT == argon2id.MEMLIMIT_INTERACTIVE
    assert len(bytes.fromhex(params["salt"])) == argon2id.SALTBYTES
    assert load_keystore(path, password=PASSWORD).seed == key.seed


def test_password_is_unicode_normalised(tmp_path: Path, key: SigningKey) -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    path = tmp_path / "id.json"
    create_keystore(path, key, password=composed, opslimit=FAST_OPS, memlimit=FAST_MEM)
    assert load_keystore(path, password=decomposed).seed == key.seed


def test_key_file_round_trip(tmp_path: Path, key: SigningKey) -> None:
    secret = tmp_path / "id.key"
    new_key_file(secret)
    assert len(bytes.fromhex(secret.read_text().strip())) == 32
    path = tmp_path / "id.json"
    create_keystore(path, key, key_file=secret, label="gateway")
    assert load_keystore(path, key_file=secret).seed == key.seed
    assert read_public(path).kdf == "keyfile"


def test_insecure_demo_round_trip_is_marked(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "demo.json"
    create_keystore(path, key, insecure_demo=True)
    document = json.loads(path.read_text())
    assert document["warning"] == INSECURE_WARNING == "INSECURE DEMO KEY: not encrypted"
    assert document["crypto"] == {"kdf": "none", "seed": key.seed.hex()}
    assert read_public(path).insecure
    assert load_keystore(path).seed == key.seed


def test_insecure_file_without_its_warning_is_refused(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "demo.json"
    create_keystore(path, key, insecure_demo=True)
    _edit(path, lambda document: document.pop("warning"))
    with pytest.raises(CorruptKeystore):
        load_keystore(path)


def test_file_format(tmp_path: Path, key: SigningKey) -> None:
    path = _password_store(tmp_path / "id.json", key)
    document = json.loads(path.read_text())
    assert set(document) == {"version", "did", "public_key", "label", "crypto"}
    assert document["version"] == 1
    assert document["public_key"] == key.public_key.hex()
    assert set(document["crypto"]) == {"kdf", "kdf_params", "cipher", "nonce", "ciphertext", "key_check"}
    assert document["crypto"]["cipher"] == "xsalsa20-poly1305"
    assert key.seed.hex() not in path.read_text()


# --- wrong or missing secrets ------------------------------------------------------------------------


def test_wrong_password(tmp_path: Path, key: SigningKey) -> None:
    path = _password_store(tmp_path / "id.json", key)
    with pytest.raises(WrongSecret):
        load_keystore(path, password=PASSWORD + "!")


def test_missing_password(tmp_path: Path, key: SigningKey) -> None:
    path = _password_store(tmp_path / "id.json", key)
    with pytest.raises(MissingSecret):
        load_keystore(path)
    with pytest.raises(MissingSecret):
        load_keystore(path, key_file=tmp_path / "whatever.key")


def test_empty_password_is_refused(tmp_path: Path, key: SigningKey) -> None:
    with pytest.raises(MissingSecret):
        create_keystore(tmp_path / "id.json", key, password="", opslimit=FAST_OPS, memlimit=FAST_MEM)
    assert not (tmp_path / "id.json").exists()


def test_wrong_key_file(tmp_path: Path, key: SigningKey) -> None:
    right, wrong = tmp_path / "right.key", tmp_path / "wrong.key"
    new_key_file(right)
    new_key_file(wrong)
    path = tmp_path / "id.json"
    create_keystore(path, key, key_file=right)
    with pytest.raises(WrongSecret):
        load_keystore(path, key_file=wrong)
    with pytest.raises(MissingSecret):
        load_keystore(path, password=PASSWORD)
    with pytest.raises(MissingSecret):
        load_keystore(path, key_file=tmp_path / "absent.key")


def test_malformed_key_file(tmp_path: Path, key: SigningKey) -> None:
    right = tmp_path / "right.key"
    new_key_file(right)
    path = tmp_path / "id.json"
    create_keystore(path, key, key_file=right)
    for content in ["", "zz" * 32, "00" * 31, "00" * 33, "\xff"]:
        bad = tmp_path / "bad.key"
        bad.write_text(content, encoding="latin-1")
        with pytest.raises(WrongSecret):
            load_keystore(path, key_file=bad)


# --- tampered files ----------------------------------------------------------------------------------


def _flip_first_hex_digit(value: str) -> str:
    return ("1" if value[0] == "0" else "0") + value[1:]


def test_tampered_ciphertext(tmp_path: Path, key: SigningKey) -> None:
    path = _password_store(tmp_path / "id.json", key)
    _edit(path, lambda d: d["crypto"].update(ciphertext=_flip_first_hex_digit(d["crypto"]["ciphertext"])))
    with pytest.raises(CorruptKeystore):
        load_keystore(path, password=PASSWORD)


def test_tampered_nonce(tmp_path: Path, key: SigningKey) -> None:
    path = _password_store(tmp_path / "id.json", key)
    _edit(path, lambda d: d["crypto"].update(nonce=_flip_first_hex_digit(d["crypto"]["nonce"])))
    with pytest.raises(CorruptKeystore):
        load_keystore(path, password=PASSWORD)


def test_tampered_public_key_of_another_valid_key(tmp_path: Path, key: SigningKey) -> None:
    """A consistent (did, public key) pair of someone else: only the decrypted seed can tell."""
    path = _password_store(tmp_path / "id.json", key)
    other = SigningKey.from_seed(b"\x07" * 32)
    _edit(path, lambda d: d.update(public_key=other.public_key.hex(), did=other.did))
    assert read_public(path).did == other.did  # the public part alone cannot know
    with pytest.raises(CorruptKeystore, match="does not belong"):
        load_keystore(path, password=PASSWORD)


def test_tampered_public_key_alone(tmp_path: Path, key: SigningKey) -> None:
    path = _password_store(tmp_path / "id.json", key)
    other = SigningKey.from_seed(b"\x07" * 32)
    _edit(path, lambda d: d.update(public_key=other.public_key.hex()))
    with pytest.raises(CorruptKeystore):
        read_public(path)
    with pytest.raises(CorruptKeystore):
        load_keystore(path, password=PASSWORD)


def test_small_order_public_key_is_refused(tmp_path: Path, key: SigningKey) -> None:
    small_order = bytes.fromhex("0100000000000000000000000000000000000000000000000000000000000000")
    forged_did = "did:key:z" + base58.b58encode(b"\xed\x01" + small_order).decode()
    path = _password_store(tmp_path / "id.json", key)
    _edit(path, lambda d: d.update(public_key=small_order.hex(), did=forged_did))
    with pytest.raises(CorruptKeystore, match="refused"):
        read_public(path)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(version=2),
        lambda d: d.update(version=True),
        lambda d: d.pop("crypto"),
        lambda d: d["crypto"].update(kdf="scrypt"),
        lambda d: d["crypto"].update(cipher="aes"),
        lambda d: d["crypto"].update(nonce="00"),
        lambda d: d["crypto"]["kdf_params"].update(salt="xyz"),
        lambda d: d["crypto"]["kdf_params"].update(opslimit="2"),
        lambda d: d["crypto"]["kdf_params"].update(memlimit=1 << 40),
        lambda d: d.update(label=7),
    ],
)
def test_malformed_documents_are_corrupt(tmp_path: Path, key: SigningKey, change: Any) -> None:
    path = _password_store(tmp_path / "id.json", key)
    _edit(path, change)
    with pytest.raises(CorruptKeystore):
        load_keystore(path, password=PASSWORD)


@pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]", b"\xff\xfe", b"[" * 100_000])
def test_garbage_files_are_corrupt(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "id.json"
    path.write_bytes(content)
    with pytest.raises(CorruptKeystore):
        read_public(path)


def test_every_failure_is_a_keystore_error() -> None:
    for error in (WrongSecret, MissingSecret, CorruptKeystore, KeystoreExists):
        assert issubclass(error, KeystoreError)


# --- writing -----------------------------------------------------------------------------------------


def test_files_are_private(tmp_path: Path, key: SigningKey) -> None:
    secret = tmp_path / "id.key"
    new_key_file(secret)
    create_keystore(tmp_path / "a.json", key, key_file=secret)
    create_keystore(tmp_path / "b.json", key, insecure_demo=True)
    _password_store(tmp_path / "c.json", key)
    for name in ("id.key", "a.json", "b.json", "c.json"):
        assert _mode(tmp_path / name) == 0o600, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json", "c.json", "id.key"]


def test_refuses_to_overwrite(tmp_path: Path, key: SigningKey) -> None:
    path = _password_store(tmp_path / "id.json", key)
    before = path.read_bytes()
    other = SigningKey.from_seed(b"\x07" * 32)
    with pytest.raises(KeystoreExists):
        create_keystore(path, other, password=PASSWORD, opslimit=FAST_OPS, memlimit=FAST_MEM)
    assert path.read_bytes() == before
    create_keystore(path, other, password=PASSWORD, overwrite=True, opslimit=FAST_OPS, memlimit=FAST_MEM)
    assert load_keystore(path, password=PASSWORD).did == other.did
    assert _mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["id.json"]  # no temporary file left behind


def test_key_file_refuses_to_overwrite(tmp_path: Path) -> None:
    secret = tmp_path / "id.key"
    new_key_file(secret)
    before = secret.read_text()
    with pytest.raises(KeystoreExists):
        new_key_file(secret)
    assert secret.read_text() == before


def test_refuses_to_create_without_protection(tmp_path: Path, key: SigningKey) -> None:
    with pytest.raises(MissingSecret):
        create_keystore(tmp_path / "id.json", key)
    assert not (tmp_path / "id.json").exists()


def test_refuses_two_protections(tmp_path: Path, key: SigningKey) -> None:
    secret = tmp_path / "id.key"
    new_key_file(secret)
    with pytest.raises(KeystoreError):
        create_keystore(tmp_path / "id.json", key, password=PASSWORD, key_file=secret)
    with pytest.raises(KeystoreError):
        create_keystore(tmp_path / "id.json", key, password=PASSWORD, insecure_demo=True)
    assert not (tmp_path / "id.json").exists()


def test_refuses_out_of_range_costs(tmp_path: Path, key: SigningKey) -> None:
    with pytest.raises(ValueError):
        create_keystore(tmp_path / "id.json", key, password=PASSWORD, opslimit=0)
    with pytest.raises(ValueError):
        create_keystore(tmp_path / "id.json", key, password=PASSWORD, memlimit=argon2id.MEMLIMIT_MIN - 1)
