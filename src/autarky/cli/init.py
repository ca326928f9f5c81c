"""``autarky init``: a configuration, an owner identity, a genesis that funds it, and a node data dir."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from autarky.cli import output
from autarky.cli.context import current
from autarky.cli.errors import UsageProblem
from autarky.cli.keyring import Secrets, protection_from_options
from autarky.crypto.did import InvalidDid, public_key_from_did
from autarky.crypto.domains import check_chain_id
from autarky.crypto.keys import InvalidKey, SigningKey, check_public_key
from autarky.crypto.keystore import read_public
from autarky.node.genesis import DEFAULT_ASSET, GenesisError, dev_genesis, load_genesis, write_genesis
from autarky.node.node import DB_FILE, init_data_dir

DEFAULT_SUPPLY = 1_000_000_000
OWNER_NAME = "owner"

NATS_TEMPLATE = """
[nats]
# The JetStream cluster that orders transactions (docs/cluster.md). Every server must run
# nats-server >= 2.14.5 with `jetstream {{ sync_interval: always }}` and file storage.
servers = {servers}
monitor_urls = {monitors}
replicas = 3
"""

CONFIG_TEMPLATE = """\
# Autarky node configuration (written by `autarky init`).
# Every setting can be overridden by an environment variable AUTARKY_<SECTION>__<KEY>,
# e.g. AUTARKY_API__PORT=9000. See docs/cli.md and src/autarky/config.py for all settings.

[node]
data_dir = "{data_dir}"
chain_id = "{chain_id}"

[api]
host = "127.0.0.1"
port = {port}
"""


def _toml_string(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace('"', '\\"')


def _toml_list(values: list[str]) -> str:
    # A JSON string is a TOML basic string for the URLs written here.
    return "[" + ", ".join(json.dumps(value) for value in values) + "]"


def _validator_key(value: str) -> bytes:
    try:
        if value.startswith("did:key:"):
            return public_key_from_did(value)
        return check_public_key(bytes.fromhex(value))
    except (ValueError, InvalidDid, InvalidKey) as exc:
        raise UsageProblem(f"--validator {value[:80]!r}: not a node key (hex or did:key): {exc}") from exc


def init(
    chain_id: Annotated[
        str | None,
        typer.Option("--chain-id", help="Chain id: 1-63 of a-z, 0-9, '-' (default: autarky-local)."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Node data directory (default: .autarky/node).")
    ] = None,
    owner: Annotated[
        str, typer.Option("--owner-name", help="Local name of the owner identity.")
    ] = OWNER_NAME,
    supply: Annotated[
        int, typer.Option("--supply", min=1, help=f"Base units of {DEFAULT_ASSET!r} the owner starts with.")
    ] = DEFAULT_SUPPLY,
    genesis_file: Annotated[
        Path | None, typer.Option("--genesis", help="Start from this genesis.json instead of building one.")
    ] = None,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="API port written to autarky.toml.")
    ] = 8620,
    insecure_demo: Annotated[
        bool, typer.Option("--insecure-demo", help="Store the owner key UNENCRYPTED (throw-away demos only).")
    ] = False,
    password_file: Annotated[
        Path | None,
        typer.Option("--password-file", help="Encrypt the owner key with the password in this file."),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="Encrypt the owner key with this key file (created if absent)."),
    ] = None,
    validators: Annotated[
        list[str] | None,
        typer.Option(
            "--validator",
            help="A validator's node key (hex or did:key, from `autarky node key`) for the genesis; "
            "repeat for each (nats engine).",
        ),
    ] = None,
    nats_servers: Annotated[
        list[str] | None,
        typer.Option(
            "--nats-server", help="Run on the nats engine with this NATS URL; repeat for each server."
        ),
    ] = None,
    nats_monitors: Annotated[
        list[str] | None,
        typer.Option("--nats-monitor", help="A NATS server's monitoring URL (checked at start); repeat."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Set up a new chain here: autarky.toml, an owner identity, a funded genesis and the node data dir.

    The owner key is encrypted with a password (from --password-file, $AUTARKY_PASSWORD, or a prompt)
    or a key file; only --insecure-demo stores it in clear.

    Example:  autarky init --chain-id plant-7 --password-file ~/.autarky-pass

    On a cluster (docs/cluster.md): every machine runs `autarky node key` first; one machine runs
    `autarky init --validator <key> ... --nats-server nats://...` and shares its genesis.json; the
    others run `autarky init --genesis genesis.json --nats-server ...`.
    """
    output.set_json_mode(json_out)
    if nats_servers and not nats_monitors:
        raise UsageProblem(
            "--nats-server needs --nats-monitor too: the node checks each server's version and "
            "`sync_interval: always` on its monitoring port (http://<host>:8222) before it starts"
        )
    if genesis_file is not None and validators:
        raise UsageProblem("--validator builds a new genesis; the one in --genesis names its own validators")
    ctx = current()
    config_file = ctx.config_file
    wrote_config = False
    if config_file.exists():
        config = ctx.config()
        if chain_id is not None and chain_id != config.node.chain_id:
            raise UsageProblem(
                f"{config_file} sets chain_id = {config.node.chain_id!r}, not {chain_id!r}: "
                "edit it or drop --chain-id"
            )
        if data_dir is not None and data_dir != config.node.data_dir:
            raise UsageProblem(
                f"{config_file} sets data_dir = {str(config.node.data_dir)!r}: edit it or drop --data-dir"
            )
        chain_id, data_dir = config.node.chain_id, config.node.data_dir
    else:
        chain_id = chain_id or "autarky-local"
        data_dir = data_dir or Path(".autarky/node")
    try:
        check_chain_id(chain_id)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from exc
    if (data_dir / DB_FILE).exists():
        raise UsageProblem(
            f"{data_dir} already holds a ledger: this directory is initialised "
            "(start it with `autarky node start`)"
        )

    ring = ctx.keyring
    secrets = Secrets(password_file=password_file, key_file=key_file)
    if ring.exists(owner):
        identity = ring.identity(owner)
        created_owner = False
        output.note(f"reusing the existing identity {owner!r} ({identity.account})")
    else:
        protection = protection_from_options(
            secrets,
            f"the new identity {owner!r}",
            insecure_demo=insecure_demo,
            password_file=password_file,
            key_file=key_file,
        )
        identity = ring.create(owner, SigningKey.generate(), protection)
        created_owner = True

    if genesis_file is not None:
        genesis = load_genesis(genesis_file)
        if genesis["chain_id"] != chain_id and not config_file.exists():
            chain_id = genesis["chain_id"]
    else:
        try:
            genesis = dev_genesis(
                chain_id,
                time_ms=time.time_ns() // 1_000_000,
                allocations=[(identity.account, DEFAULT_ASSET, supply)],
                identities=[{"did": identity.account, "kind": "operator", "metadata": {"name": owner}}],
                validators=[_validator_key(value) for value in validators or []],
            )
        except GenesisError as exc:
            raise UsageProblem(str(exc)) from exc
    if genesis["chain_id"] != chain_id:
        raise UsageProblem(
            f"{genesis_file} is for chain {genesis['chain_id']!r}, the config for {chain_id!r}"
        )

    if not config_file.exists():
        config_file.parent.mkdir(parents=True, exist_ok=True)
        text = CONFIG_TEMPLATE.format(data_dir=_toml_string(data_dir), chain_id=chain_id, port=port)
        if nats_servers:
            text = text.replace(f'chain_id = "{chain_id}"\n', f'chain_id = "{chain_id}"\nengine = "nats"\n')
            text += NATS_TEMPLATE.format(
                servers=_toml_list(nats_servers), monitors=_toml_list(nats_monitors or [])
            )
        config_file.write_text(text, encoding="utf-8")
        wrote_config = True
    init_data_dir(data_dir, genesis)
    write_genesis(data_dir / "genesis.json", genesis)

    result: dict[str, Any] = {
        "chain_id": chain_id,
        "config": str(config_file),
        "config_written": wrote_config,
        "data_dir": str(data_dir),
        "genesis": str(data_dir / "genesis.json"),
        "owner": {
            **identity.to_json(),
            "created": created_owner,
            "balance": {DEFAULT_ASSET: supply} if genesis_file is None else None,
        },
    }

    def human() -> None:
        out = output.stdout
        out.print(f"[bold green]Initialised chain[/] [bold]{chain_id}[/]")
        out.print(f"  config      {config_file}" + ("" if wrote_config else " (kept)"))
        out.print(f"  data dir    {data_dir}")
        out.print(f"  genesis     {data_dir / 'genesis.json'}")
        out.print(f"  owner       {identity.name}  {identity.account}")
        info = read_public(identity.path)
        protected = (
            "[red]NOT ENCRYPTED (--insecure-demo)[/]"
            if info.insecure
            else f"encrypted ({identity.protection})"
        )
        out.print(f"  owner key   {identity.path}  {protected}")
        if genesis_file is None:
            out.print(f"  funded      {output.fmt_amount(supply)} {DEFAULT_ASSET}")
        out.print("\nNext:  [bold]autarky node start[/]   (then, in another terminal: autarky node status)")

    output.emit(result, human)
