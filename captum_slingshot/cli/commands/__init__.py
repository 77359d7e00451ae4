"""One module per subcommand: each has ``NAME``, ``add_parser(subparsers, argv)`` and ``run(args, argv) -> int``."""

from . import audit, demo, manipulate, render, study

#: the subcommands, in the order ``--help`` lists them
COMMANDS = (demo, manipulate, render, audit, study)

__all__ = ["COMMANDS"]
