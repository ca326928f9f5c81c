"""Run one simulation and print its report as JSON: ``python -m autarky.sim --seed 7``.

Every :class:`~autarky.sim.cluster.SimConfig` field is an option (``--drop 0.2``, ``--steps 500``,
...); ``--trace`` adds the event trace. The exit status is 1 when the report shows a problem. A
failing test prints the exact command that replays its run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from autarky.sim.cluster import SimConfig, Simulation


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autarky.sim", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    defaults = SimConfig()
    for config_field in dataclasses.fields(SimConfig):
        default = getattr(defaults, config_field.name)
        parser.add_argument(
            "--" + config_field.name.replace("_", "-"),
            dest=config_field.name,
            type=type(default),
            default=default,
            metavar=type(default).__name__.upper(),
        )
    parser.add_argument("--trace", action="store_true", help="include the event trace")
    args = parser.parse_args(argv)
    options = {
        config_field.name: getattr(args, config_field.name) for config_field in dataclasses.fields(SimConfig)
    }
    report = Simulation(args.seed, **options).run()
    print(json.dumps(report.to_json(trace=args.trace), indent=2))
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
