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
"""


# Typer may vendor its own copy of click; find its ClickException (usage errors) through a public class.
_CLICK_EXCEPTION: type[Exception] = next(
    cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException"
)


class _AutarkyGroup(TyperGroup):
    """The root group: turns every known failure below it into one line and an exit code."""

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


def _register() -> None:
    from autarky.cli import audit, bench, cluster, escrow, identity, init, mqtt, node, tx, up, wallet

    app.command("init")(init.init)
    app.command("up")(up.up)
    app.add_typer(node.app, name="node")
    app.add_typer(identity.app, name="identity")
    app.add_typer(wallet.app, name="wallet")
    app.add_typer(tx.app, name="tx")
    app.command("audit")(audit.audit)
    app.add_typer(bench.app, name="bench")
    app.add_typer(cluster.app, name="cluster")
    app.add_typer(mqtt.app, name="mqtt")
    app.add_typer(escrow.app, name="escrow")
    from autarky.cli import oracle

    app.add_typer(oracle.app, name="oracle")
    from autarky.cli import data

    app.add_typer(data.app, name="data")
    from autarky.cli import market

    app.add_typer(market.app, name="market")
    from autarky.cli import meter

    app.add_typer(meter.app, name="meter")
    from autarky.cli import lease

    app.add_typer(lease.app, name="lease")
    from autarky.cli import jobs

    app.add_typer(jobs.app, name="jobs")
    from autarky.cli import decisions, provenance

    app.add_typer(provenance.app, name="provenance")
    app.add_typer(decisions.app, name="decisions")
    from autarky.cli import model

    app.add_typer(model.app, name="model")
    from autarky.cli import sim

    app.add_typer(sim.app, name="sim")


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``autarky`` script."""
    app(args=argv, prog_name="autarky")


__all__ = ["EXIT_USAGE", "app", "main"]
