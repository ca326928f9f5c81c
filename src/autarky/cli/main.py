"""The ``autarky`` command: the root group, its global options, and the error edge.

Every command group lives in its own module (``init``, ``node``, ``identity``, ``wallet``, ``tx``,
``up``, ``cluster``). Failures become one line on stderr and an exit code (see :mod:`autarky.cli.errors`):
2 for a usage or configuration problem, 1 for a refused operation, 130 for Ctrl-C.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from autarky.cli import output
from autarky.cli.context import Context, set_current
from autarky.cli.errors import EXIT_USAGE, translate

HELP = """Autarky: every machine its own identity, wallet and rules, on a replicated ledger.

Try it with one command:  autarky up   (embedded node, demo fleet, dashboard)

Or set up your own chain:  autarky init  then  autarky node start

A local cluster on the nats engine:  autarky cluster up

A machine of your own, from a Python file:  autarky agent run FILE.py --from NAME
"""


# Typer may vendor its own copy of click; find its ClickException (usage errors) through a public class.
_CLICK_EXCEPTION: type[Exception] = next(
    cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException"
)


class _AutarkyGroup(TyperGroup):
    """The root group: turns every known failure below it into one line and an exit code, and
    loads each command group only when it is used (``_LAZY``)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*_LAZY, *(name for name in super().list_commands(ctx) if name not in _LAZY)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in _LAZY:
            command = _load(cmd_name)
            self.add_command(command, cmd_name)
        return command

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, _CLICK_EXCEPTION):
            raise
        except KeyboardInterrupt:
            output.error("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            problem = translate(exc)
            if problem is None:
                raise
            if output.json_mode():
                sys.stdout.write(json.dumps(problem.to_json(), sort_keys=True) + "\n")
            output.error(problem.message)
            raise typer.Exit(problem.exit_code) from exc


app = typer.Typer(
    cls=_AutarkyGroup,
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)


@app.callback()
def _global_options(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file (default: $AUTARKY_CONFIG or ./autarky.toml).",
            show_default=False,
        ),
    ] = None,
    node: Annotated[
        str | None,
        typer.Option(
            "--node",
            help="Node API URL (default: $AUTARKY_NODE_URL or http://{api.host}:{api.port}).",
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", help="API key for admin routes (default: api.api_key setting).", show_default=False
        ),
    ] = None,
    keys_dir: Annotated[
        Path | None,
        typer.Option(
            "--keys-dir",
            help="Folder of named identities (default: $AUTARKY_KEYS_DIR or .autarky/keys).",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more (to stderr).")] = False,
) -> None:
    set_current(Context(config_path=config, node_url=node, api_key=api_key, keys_dir=keys_dir))
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# Command groups and commands, imported only when used: a CLI call pays for the one it runs, not
# for every group's imports (node, HTTP client, models...). Name -> (module, attribute, is a group).
_LAZY: dict[str, tuple[str, str, bool]] = {
    "init": ("autarky.cli.init", "init", False),
    "up": ("autarky.cli.up", "up", False),
    "node": ("autarky.cli.node", "app", True),
    "identity": ("autarky.cli.identity", "app", True),
    "wallet": ("autarky.cli.wallet", "app", True),
    "tx": ("autarky.cli.tx", "app", True),
    "audit": ("autarky.cli.audit", "audit", False),
    "bench": ("autarky.cli.bench", "app", True),
    "cluster": ("autarky.cli.cluster", "app", True),
    "mqtt": ("autarky.cli.mqtt", "app", True),
    "escrow": ("autarky.cli.escrow", "app", True),
    "oracle": ("autarky.cli.oracle", "app", True),
    "data": ("autarky.cli.data", "app", True),
    "market": ("autarky.cli.market", "app", True),
    "meter": ("autarky.cli.meter", "app", True),
    "lease": ("autarky.cli.lease", "app", True),
    "jobs": ("autarky.cli.jobs", "app", True),
    "provenance": ("autarky.cli.provenance", "app", True),
    "decisions": ("autarky.cli.decisions", "app", True),
    "model": ("autarky.cli.model", "app", True),
    "sim": ("autarky.cli.sim", "app", True),
    "agent": ("autarky.cli.agent", "app", True),
}


def _load(name: str) -> Any:
    """The click command for ``name``, built from its module on first use."""
    import importlib

    module_name, attribute, is_group = _LAZY[name]
    target = getattr(importlib.import_module(module_name), attribute)
    if is_group:
        # A group even when it has one command (``tx show``), as add_typer made it.
        command: Any = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False, rich_markup_mode="rich")
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``autarky`` script."""
    app(args=argv, prog_name="autarky")


__all__ = ["EXIT_USAGE", "app", "main"]
