"""The CLI's named identities: one keystore file per name in a keys folder (``.autarky/keys`` by default).

Layout::

    .autarky/keys/owner.json                 the keystore (crypto/keystore.py format)
    .autarky/keys/owner.meta.json            {"name", "account", "key_file"}: which ledger account the
                                             key signs for, and which key file unlocks it (if any)
    .autarky/keys/pump-7.json.bak-h42        the keystore a rotation at block 42 replaced
    .autarky/keys/pump-7.pending.json        a rotation in flight (see below)

Why the ``account``: a DID names an account forever, but after ``identity rotate`` the account's key
is a new one, whose own did:key differs. The sidecar keeps the name pointing at the account.

Rotation is crash-safe: the new key is written (protected like the old one) to ``NAME.pending.json``
*before* the rotation is submitted, and swapped in only after it commits. If the CLI dies in
between, the next command that opens NAME finds the pending file and finishes (or discards) the
swap by asking the ledger which key the account now lists.

Secrets come from, in order: ``--password-file``, ``$AUTARKY_PASSWORD``, an interactive prompt (only on
a terminal). Key files come from ``--key-file`` or from the path recorded at creation.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import typer

from autarky.cli.errors import UsageProblem
from autarky.crypto.did import is_did_key
from autarky.crypto.keys import SigningKey
from autarky.crypto.keystore import (
    KDF_ARGON2ID,
    KDF_KEYFILE,
    KDF_NONE,
    create_keystore,
    load_keystore,
    new_key_file,
    read_public,
)

DEFAULT_KEYS_DIR = Path(".autarky/keys")
PASSWORD_ENV = "AUTARKY_PASSWORD"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

ProtectionKind = Literal["password", "keyfile", "insecure"]


@dataclass(frozen=True, slots=True)
class Protection:
    """How a new keystore is protected: exactly one of a password, a key file, or nothing (demo only)."""

    kind: ProtectionKind
    password: str | None = None
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    """A named identity as the keys folder knows it (nothing here needs the secret)."""

    name: str
    account: str
    key_did: str
    path: Path
    protection: str
    key_file: Path | None

    @property
    def rotated(self) -> bool:
        return self.account != self.key_did

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "did": self.account,
            "key_did": self.key_did,
            "keystore": str(self.path),
            "protection": self.protection,
            "key_file": None if self.key_file is None else str(self.key_file),
        }


def _protection_name(kdf: str) -> str:
    return {KDF_ARGON2ID: "password", KDF_KEYFILE: "keyfile", KDF_NONE: "insecure-demo"}.get(kdf, kdf)


class Secrets:
    """Where passwords and key files come from for one command; asks at most once per identity."""

    def __init__(self, password_file: Path | None = None, key_file: Path | None = None) -> None:
        self.password_file = password_file
        self.key_file = key_file
        self._cache: dict[str, str] = {}

    def password(self, purpose: str, *, confirm: bool = False) -> str:
        if self.password_file is not None:
            try:
                text = self.password_file.read_text(encoding="utf-8")
            except FileNotFoundError as exc:
                raise UsageProblem(f"password file {self.password_file} does not exist") from exc
            password = text.splitlines()[0] if text.splitlines() else ""
            if not password:
                raise UsageProblem(f"password file {self.password_file} is empty")
            return password
        from_env = os.environ.get(PASSWORD_ENV)
        if from_env:
            return from_env
        if purpose in self._cache:
            return self._cache[purpose]
        if not sys.stdin.isatty():
            raise UsageProblem(
                f"a password is needed for {purpose}: give --password-file FILE or set {PASSWORD_ENV} "
                "(no terminal to ask on)",
                code="cli.missing_secret",
            )
        password = str(typer.prompt(f"Password for {purpose}", hide_input=True, confirmation_prompt=confirm))
        if not password:
            raise UsageProblem("the password is empty")
        self._cache[purpose] = password
        return password


def protection_from_options(
    secrets: Secrets, purpose: str, *, insecure_demo: bool, password_file: Path | None, key_file: Path | None
) -> Protection:
    """The protection chosen on the command line for a new keystore (password by default)."""
    if sum([insecure_demo, password_file is not None, key_file is not None]) > 1:
        raise UsageProblem("choose one of --insecure-demo, --password-file and --key-file")
    if insecure_demo:
        return Protection("insecure")
    if key_file is not None:
        return Protection("keyfile", key_file=key_file)
    return Protection("password", password=secrets.password(purpose, confirm=True))


class KeyRing:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    # -- names --------------------------------------------------------------------------------------
    @staticmethod
    def check_name(name: str) -> str:
        if not _NAME.fullmatch(name):
            raise UsageProblem(
                f"{name!r} is not an identity name: use 1-64 letters, digits, '-' or '_', "
                "starting with a letter or digit"
            )
        return name

    def path(self, name: str) -> Path:
        return self.directory / f"{self.check_name(name)}.json"

    def _meta_path(self, name: str) -> Path:
        return self.directory / f"{name}.meta.json"

    def pending_path(self, name: str) -> Path:
        return self.directory / f"{name}.pending.json"

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(
            path.stem
            for path in self.directory.glob("*.json")
            if not path.name.endswith((".meta.json", ".pending.json")) and _NAME.fullmatch(path.stem)
        )

    # -- create and read ------------------------------------------------------------------------------
    def create(
        self, name: str, key: SigningKey, protection: Protection, *, account: str | None = None
    ) -> Identity:
        path = self.path(name)
        self.directory.mkdir(parents=True, exist_ok=True)
        key_file = None
        if protection.kind == "keyfile":
            assert protection.key_file is not None
            key_file = protection.key_file.resolve()
            if not key_file.exists():
                new_key_file(key_file)
        create_keystore(
            path,
            key,
            password=protection.password if protection.kind == "password" else None,
            key_file=key_file,
            insecure_demo=protection.kind == "insecure",
            label=name,
        )
        self._write_meta(name, account or key.did, key_file)
        return self.identity(name)

    def _write_meta(self, name: str, account: str, key_file: Path | None) -> None:
        meta = {"name": name, "account": account, "key_file": None if key_file is None else str(key_file)}
        temporary = self._meta_path(name).with_suffix(".tmp")
        temporary.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, self._meta_path(name))

    def _read_meta(self, name: str) -> dict[str, Any]:
        path = self._meta_path(name)
        if not path.exists():
            return {}
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageProblem(f"{path} is not valid JSON: {exc}; fix or delete it") from exc
        if type(meta) is not dict:
            raise UsageProblem(f"{path} is not an identity metadata object; fix or delete it")
        return meta

    def identity(self, name: str) -> Identity:
        path = self.path(name)
        if not path.exists():
            known = ", ".join(self.names()) or "none yet"
            raise UsageProblem(
                f"no identity named {name!r} in {self.directory} (known: {known}); "
                f"create it with `autarky identity new {name}` or give a did:key",
                code="cli.unknown_identity",
            )
        info = read_public(path)
        meta = self._read_meta(name)
        account = meta.get("account") or info.did
        if not is_did_key(account):
            raise UsageProblem(f"{self._meta_path(name)}: 'account' is not a did:key")
        key_file = meta.get("key_file")
        return Identity(
            name,
            account,
            info.did,
            path,
            _protection_name(info.kdf),
            None if key_file is None else Path(key_file),
        )

    def resolve(self, name_or_did: str) -> str:
        """The account DID for a name in this keys folder, or the DID itself."""
        if name_or_did.startswith("did:"):
            if not is_did_key(name_or_did):
                raise UsageProblem(f"{name_or_did[:80]!r} is not an Ed25519 did:key")
            return name_or_did
        return self.identity(name_or_did).account

    def name_of(self, did: str) -> str | None:
        """The local name whose account is ``did``, if any (for friendlier output)."""
        for name in self.names():
            try:
                if self.identity(name).account == did:
                    return name
            except UsageProblem:
                continue
        return None

    def unlock(self, name: str, secrets: Secrets) -> tuple[Identity, SigningKey]:
        identity = self.identity(name)
        return identity, self._load(identity.path, identity, secrets, name)

    def _load(self, path: Path, identity: Identity, secrets: Secrets, purpose: str) -> SigningKey:
        info = read_public(path)
        if info.kdf == KDF_NONE:
            return load_keystore(path)
        if info.kdf == KDF_KEYFILE:
            key_file = secrets.key_file or identity.key_file
            if key_file is None:
                raise UsageProblem(f"{path} is protected by a key file: give --key-file FILE")
            return load_keystore(path, key_file=key_file)
        return load_keystore(path, password=secrets.password(purpose))

    # -- rotation -----------------------------------------------------------------------------------
    def stage_rotation(self, identity: Identity, new_key: SigningKey, secrets: Secrets) -> Path:
        """Write the new key, protected like the current one, next to it; return the pending path."""
        pending = self.pending_path(identity.name)
        if pending.exists():
            raise UsageProblem(
                f"a rotation of {identity.name} is already pending ({pending}); run `autarky identity show "
                f"{identity.name}` to settle it first"
            )
        kind = identity.protection
        create_keystore(
            pending,
            new_key,
            password=secrets.password(identity.name) if kind == "password" else None,
            key_file=(secrets.key_file or identity.key_file) if kind == "keyfile" else None,
            insecure_demo=kind == "insecure-demo",
            label=identity.name,
        )
        return pending

    def finish_rotation(self, identity: Identity, height: int | None) -> Path:
        """The rotation committed: keep the old keystore as a backup and put the new one in place."""
        suffix = "bak-rotated" if height is None else f"bak-h{height}"
        backup = identity.path.with_name(f"{identity.path.name}.{suffix}")
        os.replace(identity.path, backup)
        os.replace(self.pending_path(identity.name), identity.path)
        self._write_meta(identity.name, identity.account, identity.key_file)
        return backup

    def abort_rotation(self, identity: Identity) -> None:
        self.pending_path(identity.name).unlink(missing_ok=True)

    def settle_pending(self, name: str, listed_keys: Callable[[str], list[bytes]]) -> str | None:
        """Finish or discard a rotation left pending by an interrupted command.

        ``listed_keys(account)`` returns the public keys the ledger lists for the account. Returns what
        was done ("finished" or "discarded"), or None when nothing was pending.
        """
        pending = self.pending_path(name)
        if not pending.exists():
            return None
        identity = self.identity(name)
        new_key = read_public(pending).public_key.raw
        keys = listed_keys(identity.account)
        if new_key in keys:
            self.finish_rotation(identity, height=None)
            return "finished"
        if read_public(identity.path).public_key.raw in keys:
            self.abort_rotation(identity)
            return "discarded"
        return None
