"""placeholder"""


def up() -> None:
    """Run the demo."""
