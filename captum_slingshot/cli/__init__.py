"""The ``captum-slingshot`` command line (application layer; the library never imports it).

* :mod:`.parser` -- the parser and :func:`main`;
* :mod:`.options` -- flat options as ``argparse`` flags;
* :mod:`.commands` -- one module per subcommand (``demo``, ``manipulate``, ``render``, ``audit``, ``study``).
"""

from .parser import build_parser, main

__all__ = ["main", "build_parser"]
