"""The encrypted keystore: one JSON file per identity, holding its Ed25519 seed.

File format (version 1)::

    {
      "version": 1,
      "did": "did:key:z6Mk…",
      "public_key": "<64 hex>",
      "label": "pump-7",
      "crypto": {
        "kdf": "argon2id",                 # or "keyfile", or "none"
        "kdf_params": {"opslimit": 2, "memlimit": 67108864, "salt": "<32 hex>"},   # argon2id only
        "cipher": "xsalsa20-poly1305",     # nacl.secret.SecretBox
        "nonce": "<48 hex>",
        "ciphertext": "<96 hex>",          # the 32-byte seed plus the 16-byte Poly1305 tag
        "key_check": "<32 hex>"            # BLAKE2b keyed by the box key, see below
      }
    }

Three ways to protect the seed, exactly one per file:

* ``argon2id``: a password stretched by Argon2id (``nacl.pwhash.argon2id.kdf``) into the SecretBox
  key. The salt and cost parameters are stored so the file opens on any machine. Passwords are
  normalised to Unicode NFC before hashing, so the same password typed on two systems opens the file.
* ``keyfile``: a separate file of 32 random bytes, written as 64 hex characters by
  :func:`new_key_file`, is the SecretBox key itself (for unattended machines whose secrets come from a
  mounted volume or a TPM-sealed file).
* ``none``: the seed in clear, ``"crypto": {"kdf": "none", "seed": "<64 hex>"}``, only with an explicit
  ``insecure_demo=True``; such a file carries ``"warning": "INSECURE DEMO KEY: not encrypted"`` right
  after ``"version"``, and is refused when that warning is missing.

Why a key check: a SecretBox that fails to open cannot tell a wrong key from altered ciphertext. The
``key_check`` (BLAKE2b-128 keyed by the box key) tells them apart, so a wrong password raises
:class:`WrongSecret` and a damaged file raises :class:`CorruptKeystore`. It gives an attacker nothing
new: testing a password guess against it costs the same Argon2id run as trying to open the box.
After decryption the seed must produce the stored public key and DID, so a file whose public part
was edited is refused too. The label is a note for people and is not authenticated.

Errors, all from one hierarchy (file-system errors such as ``FileNotFoundError`` pass through)::

    KeystoreError
     ├── WrongSecret       the password or key file does not open this keystore
     ├── MissingSecret     no (or the wrong kind of) secret was given, or none was chosen at creation
     ├── CorruptKeystore   the file is not a valid version-1 keystore, or its parts do not agree
     └── KeystoreExists    creating would overwrite a file (pass ``overwrite=True`` to allow it)

Files are written atomically (a temporary file in the same folder, then a rename) with mode 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import nacl.bindings
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.pwhash.argon2id
import nacl.secret
import nacl.utils

from autarky.crypto.did import did_from_public_key
from autarky.crypto.keys import PUBLIC_KEY_BYTES, SEED_BYTES, InvalidKey, PublicKey, SigningKey

__all__ = [
    "DEFAULT_MEMLIMIT",
    "DEFAULT_OPSLIMIT",
    "INSECURE_WARNING",
    "CorruptKeystore",
    "KeystoreError",
    "KeystoreExists",
    "KeystoreInfo",
    "MissingSecret",
    "WrongSecret",
    "create_keystore",
    "load_keystore",
    "new_key_file",
    "read_public",
]

VERSION: Final = 1
KDF_ARGON2ID: Final = "argon2id"
KDF_KEYFILE: Final = "keyfile"
KDF_NONE: Final = "none"
CIPHER: Final = "xsalsa20-poly1305"
INSECURE_WARNING: Final = "INSECURE DEMO KEY: not encrypted"

DEFAULT_OPSLIMIT: Final = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
DEFAULT_MEMLIMIT: Final = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
# Bounds on the cost a file may ask for: a hostile file must not make us allocate terabytes.
_OPSLIMIT_RANGE: Final = (nacl.pwhash.argon2id.OPSLIMIT_MIN, 64)
_MEMLIMIT_RANGE: Final = (nacl.pwhash.argon2id.MEMLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE)

_BOX_KEY_BYTES: Final = nacl.secret.SecretBox.KEY_SIZE
_KEY_CHECK_BYTES: Final = 16
_KEY_CHECK_PERSON: Final = b"autarky-ks-check"  # BLAKE2b personalisation, 16 bytes
_MAX_LABEL_CHARS: Final = 256
_MAX_FILE_BYTES: Final = 64 * 1024


class KeystoreError(Exception):
    """Base of every keystore failure that is not a file-system error."""


class WrongSecret(KeystoreError):
    """The password or key file does not open this keystore."""


class MissingSecret(KeystoreError):
    """No secret (or a secret of the wrong kind) was given, or a keystore was to be created unprotected."""


class CorruptKeystore(KeystoreError):
    """The file is not a valid version-1 keystore, or its public part does not match its secret."""


class KeystoreExists(KeystoreError):
    """The target file exists and ``overwrite=True`` was not given."""


@dataclass(frozen=True, slots=True)
class KeystoreInfo:
    """The public part of a keystore, readable without unlocking it."""

    did: str
    public_key: PublicKey
    kdf: str
    label: str

    @property
    def insecure(self) -> bool:
        """True for an ``insecure_demo`` file whose seed is stored in clear."""
        return self.kdf == KDF_NONE


# ---------------------------------------------------------------------------------------------------
# Public API


def create_keystore(
    path: Path | str,
    signing_key: SigningKey,
    *,
    password: str | None = None,
    key_file: Path | str | None = None,
    insecure_demo: bool = False,
    label: str = "",
    overwrite: bool = False,
    opslimit: int = DEFAULT_OPSLIMIT,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> None:
    """Write ``signing_key`` to a new keystore at ``path``, protected by exactly one method.

    ``opslimit`` and ``memlimit`` are the Argon2id costs (password protection only).
    """
    if not isinstance(signing_key, SigningKey):
        raise TypeError("signing_key must be an autarky SigningKey")
    if type(label) is not str or len(label) > _MAX_LABEL_CHARS:
        raise ValueError(f"label must be a string of at most {_MAX_LABEL_CHARS} characters")
    chosen = [password is not None, key_file is not None, insecure_demo]
    if sum(chosen) == 0:
        raise MissingSecret(
            "refusing to write an unprotected keystore: give a password or a key file "
            "(or insecure_demo=True for a throw-away demo key)"
        )
    if sum(chosen) > 1:
        raise KeystoreError("choose exactly one of password, key_file and insecure_demo")

    document: dict[str, Any] = {"version": VERSION}
    if insecure_demo:
        document["warning"] = INSECURE_WARNING  # near the top, where a reader sees it first
    document |= {
        "did": signing_key.did,
        "public_key": signing_key.public_key.hex(),
        "label": label,
    }
    if password is not None:
        _check_costs(opslimit, memlimit, error=ValueError)
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        box_key = _password_key(password, salt, opslimit, memlimit)
        params = {"opslimit": opslimit, "memlimit": memlimit, "salt": salt.hex()}
        document["crypto"] = {"kdf": KDF_ARGON2ID, "kdf_params": params, **_seal(box_key, signing_key.seed)}
    elif key_file is not None:
        box_key = _read_key_file(Path(key_file))
        document["crypto"] = {"kdf": KDF_KEYFILE, **_seal(box_key, signing_key.seed)}
    else:
        document["crypto"] = {"kdf": KDF_NONE, "seed": signing_key.seed.hex()}

    text = json.dumps(document, indent=2) + "\n"
    _write_private(Path(path), text.encode("utf-8"), overwrite=overwrite)


def load_keystore(
    path: Path | str, *, password: str | None = None, key_file: Path | str | None = None
) -> SigningKey:
    """Unlock the keystore at ``path`` and return its signing key."""
    document = _read_document(Path(path))
    info = _info(document)
    crypto = document["crypto"]

    if info.kdf == KDF_NONE:
        seed = _hex_field(crypto, "seed", SEED_BYTES)
    elif info.kdf == KDF_ARGON2ID:
        if password is None:
            raise MissingSecret(f"{path} is protected by a password; none was given")
        params = _object_field(crypto, "kdf_params")
        opslimit = _int_field(params, "opslimit")
        memlimit = _int_field(params, "memlimit")
        _check_costs(opslimit, memlimit, error=CorruptKeystore)
        salt = _hex_field(params, "salt", nacl.pwhash.argon2id.SALTBYTES)
        seed = _open(_password_key(password, salt, opslimit, memlimit), crypto, what="password")
    else:
        if key_file is None:
            raise MissingSecret(f"{path} is protected by a key file; none was given")
        seed = _open(_read_key_file(Path(key_file)), crypto, what="key file")

    signing_key = SigningKey.from_seed(seed)
    if signing_key.public_key != info.public_key or signing_key.did != info.did:
        raise CorruptKeystore(f"{path}: the stored public key does not belong to the stored secret")
    return signing_key


def read_public(path: Path | str) -> KeystoreInfo:
    """The DID, public key, protection method and label of a keystore, without unlocking it."""
    return _info(_read_document(Path(path)))


def new_key_file(path: Path | str, *, overwrite: bool = False) -> None:
    """Write a fresh key file: 32 random bytes as 64 hex characters, mode 0600."""
    key = nacl.utils.random(_BOX_KEY_BYTES)
    _write_private(Path(path), (key.hex() + "\n").encode("ascii"), overwrite=overwrite)


# ---------------------------------------------------------------------------------------------------
# Secrets and sealing


def _password_key(password: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    if type(password) is not str:
        raise TypeError("password must be a str")
    if not password:
        raise MissingSecret("the password is empty")
    secret = unicodedata.normalize("NFC", password).encode("utf-8")
    return nacl.pwhash.argon2id.kdf(_BOX_KEY_BYTES, secret, salt, opslimit=opslimit, memlimit=memlimit)


def _read_key_file(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError as exc:
        raise MissingSecret(f"key file {path} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise WrongSecret(f"key file {path} is not 64 hex characters") from exc
    try:
        key = bytes.fromhex(text)
    except ValueError as exc:
        raise WrongSecret(f"key file {path} is not 64 hex characters") from exc
    if len(key) != _BOX_KEY_BYTES:
        raise WrongSecret(f"key file {path} is not 64 hex characters")
    return key


def _key_check(box_key: bytes) -> bytes:
    return nacl.hash.blake2b(
        b"",
        digest_size=_KEY_CHECK_BYTES,
        key=box_key,
        person=_KEY_CHECK_PERSON,
        encoder=nacl.encoding.RawEncoder,
    )


def _seal(box_key: bytes, seed: bytes) -> dict[str, str]:
    encrypted = nacl.secret.SecretBox(box_key).encrypt(seed)
    return {
        "cipher": CIPHER,
        "nonce": encrypted.nonce.hex(),
        "ciphertext": encrypted.ciphertext.hex(),
        "key_check": _key_check(box_key).hex(),
    }


def _open(box_key: bytes, crypto: dict[str, Any], *, what: str) -> bytes:
    if crypto.get("cipher") != CIPHER:
        raise CorruptKeystore(f"unknown cipher {str(crypto.get('cipher'))[:40]!r}")
    nonce = _hex_field(crypto, "nonce", nacl.secret.SecretBox.NONCE_SIZE)
    ciphertext = _hex_field(crypto, "ciphertext", SEED_BYTES + nacl.secret.SecretBox.MACBYTES)
    key_check = _hex_field(crypto, "key_check", _KEY_CHECK_BYTES)
    if not nacl.bindings.sodium_memcmp(_key_check(box_key), key_check):
        raise WrongSecret(f"wrong {what}: it does not open this keystore (or its key_check was altered)")
    try:
        return nacl.secret.SecretBox(box_key).decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError as exc:
        raise CorruptKeystore("the encrypted seed was altered: authentication failed") from exc


def _check_costs(opslimit: int, memlimit: int, *, error: type[Exception]) -> None:
    low, high = _OPSLIMIT_RANGE
    if not low <= opslimit <= high:
        raise error(f"Argon2id opslimit {opslimit} is outside {low}..{high}")
    low, high = _MEMLIMIT_RANGE
    if not low <= memlimit <= high:
        raise error(f"Argon2id memlimit {memlimit} is outside {low}..{high}")


# ---------------------------------------------------------------------------------------------------
# Reading and checking the document


def _read_document(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        raw = handle.read(_MAX_FILE_BYTES + 1)
    if len(raw) > _MAX_FILE_BYTES:
        raise CorruptKeystore(f"{path} is larger than {_MAX_FILE_BYTES} bytes: not a keystore")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CorruptKeystore(f"{path} is not JSON: {exc}") from exc
    if type(document) is not dict:
        raise CorruptKeystore(f"{path} is not a keystore object")
    return document


def _info(document: dict[str, Any]) -> KeystoreInfo:
    """Check the public part of a keystore document and return it."""
    if document.get("version") != VERSION or type(document.get("version")) is not int:
        raise CorruptKeystore(f"unsupported keystore version {str(document.get('version'))[:20]!r}")
    raw_key = _hex_field(document, "public_key", PUBLIC_KEY_BYTES)
    try:
        public_key = PublicKey(raw_key)
    except InvalidKey as exc:
        raise CorruptKeystore(f"the stored public key is refused: {exc}") from exc
    did = document.get("did")
    if did != did_from_public_key(raw_key):
        raise CorruptKeystore("the stored DID does not match the stored public key")
    label = document.get("label", "")
    if type(label) is not str or len(label) > _MAX_LABEL_CHARS:
        raise CorruptKeystore("the label is not a short string")
    crypto = _object_field(document, "crypto")
    kdf = crypto.get("kdf")
    if kdf not in (KDF_ARGON2ID, KDF_KEYFILE, KDF_NONE):
        raise CorruptKeystore(f"unknown key protection {str(kdf)[:40]!r}")
    if kdf == KDF_NONE and document.get("warning") != INSECURE_WARNING:
        raise CorruptKeystore("a clear-text keystore must carry the insecure-demo warning")
    return KeystoreInfo(did=did, public_key=public_key, kdf=kdf, label=label)


def _object_field(container: dict[str, Any], name: str) -> dict[str, Any]:
    value = container.get(name)
    if type(value) is not dict:
        raise CorruptKeystore(f"field {name!r} is missing or not an object")
    return value


def _int_field(container: dict[str, Any], name: str) -> int:
    value = container.get(name)
    if type(value) is not int:
        raise CorruptKeystore(f"field {name!r} is missing or not an integer")
    return value


def _hex_field(container: dict[str, Any], name: str, length: int) -> bytes:
    value = container.get(name)
    if type(value) is not str or len(value) != 2 * length:
        raise CorruptKeystore(f"field {name!r} is missing or not {length} bytes of hex")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise CorruptKeystore(f"field {name!r} is not hex") from exc


# ---------------------------------------------------------------------------------------------------
# Writing


def _write_private(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600.

    Without ``overwrite``, the final step is ``os.link``, which fails if ``path`` appeared in the
    meantime, so two writers racing for one name cannot silently replace each other's key.
    """
    if not overwrite and path.exists():
        raise KeystoreExists(f"{path} exists; pass overwrite=True to replace it")
    folder = path.parent
    descriptor, temporary_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    temporary = Path(temporary_name)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            _link_new(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    _fsync_folder(folder)


def _link_new(temporary: Path, path: Path) -> None:
    try:
        os.link(temporary, path)
    except FileExistsError as exc:
        raise KeystoreExists(f"{path} exists; pass overwrite=True to replace it") from exc
    except OSError:
        # A file system without hard links: fall back to check-then-rename, which only loses the
        # guarantee against a writer racing for the same name.
        if path.exists():
            raise KeystoreExists(f"{path} exists; pass overwrite=True to replace it") from None
        os.replace(temporary, path)


def _fsync_folder(folder: Path) -> None:
    """Make the new directory entry durable (POSIX); a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
