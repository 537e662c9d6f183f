"""The ``ezchat`` command (typer): thin commands that call the layers below."""


def main() -> None:
    """The ``ezchat`` command (ezchat.cli.app). Imported when called, not with the package, so
    that ``python -m ezchat.cli.batch`` finds its module not yet loaded."""
    from .app import main as run_command

    run_command()
