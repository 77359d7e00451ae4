"""The ``captum-slingshot`` command: the parser, built from one module per subcommand, and ``main``.

Subcommands: ``demo`` (attack and audit on a real MNIST CNN), ``manipulate`` (a model transform,
the Gradient Slingshot by default, from flags and/or a YAML file), ``render`` (FVs of units under
several AM strategies), ``audit`` (the defense checks on a layer) and ``study`` (a grid of
transforms x settings x checks over models, from a YAML file, to CSV and plots).
``captum-slingshot COMMAND --help`` shows an example. User errors print one ``error: ...`` line
and exit with status 1 (set ``CAPTUM_SLINGSHOT_DEBUG=1`` for the traceback); argument errors exit
with status 2. ``manipulate`` and ``audit`` also run under ``torchrun`` (the work shared across the
processes, rank 0 writing the files); the other commands refuse it.

Example:
    $ captum-slingshot demo --out out/demo
    $ captum-slingshot manipulate --steps 500 --trajectory-strategy gc --aim-radius 19.5 --out out/attack
    $ captum-slingshot audit --weights out/attack/model.pt --out out/audit
    $ captum-slingshot study --config examples/study_alpha_units.yaml --out out/study
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Iterator, List, Optional, Sequence

from .commands import COMMANDS

__all__ = ["main", "build_parser"]


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; ``argv`` lets a subcommand adapt its options (``manipulate --transform NAME``)."""
    parser = argparse.ArgumentParser(
        prog="captum-slingshot",
        description="Feature visualization you can audit (Gradient Slingshots, Captum plugin).",
        epilog="run 'captum-slingshot COMMAND --help' for a command's options and an example",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub, list(argv))
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    command = {c.NAME: c for c in COMMANDS}[args.command]
    try:
        with _process_group(args.command):
            return command.run(args, argv)
    except (ValueError, TypeError, FileNotFoundError, OSError, RuntimeError) as err:
        if os.environ.get("CAPTUM_SLINGSHOT_DEBUG"):
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"captum-slingshot {args.command}: error: {message}", file=sys.stderr)
        return 1


#: the commands that share their work across the processes of a ``torchrun``
DISTRIBUTED_COMMANDS = ("manipulate", "audit")


@contextlib.contextmanager
def _process_group(command: str) -> Iterator[None]:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1): join the process group for the commands that use it
    (and leave it afterwards); refuse the others, which would only repeat their work in every process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        yield
        return
    if command not in DISTRIBUTED_COMMANDS:
        raise RuntimeError(f"{command} does not run under torchrun (only {' and '.join(DISTRIBUTED_COMMANDS)} "
                           "share their work across processes); run it as a single process")
    import torch.distributed as dist

    from ..distributed import init_from_env

    joined = not dist.is_initialized()
    init_from_env()
    try:
        yield
    finally:
        if joined and dist.is_initialized():
            dist.destroy_process_group()
