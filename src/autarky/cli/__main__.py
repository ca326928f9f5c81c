"""``python -m autarky.cli``: the same as the ``autarky`` script."""

from autarky.cli.main import main

main()
