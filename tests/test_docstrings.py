"""The Examples in the docstrings run and print what they show: every module of the package is tried."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import captum_slingshot

MODULES = sorted(m.name for m in pkgutil.walk_packages(captum_slingshot.__path__, "captum_slingshot.")
                 if not m.name.endswith("__main__"))
#: modules whose docstrings hold no runnable example (packages that only re-export, the command line's
#: entry point, the training loop, the checkpoint format's writer, plotting glue), each for a reason
NO_EXAMPLES = {
    "captum_slingshot._utils", "captum_slingshot.compat", "captum_slingshot.experiments", "captum_slingshot.cli",
    "captum_slingshot.cli.commands", "captum_slingshot.cli.commands.demo", "captum_slingshot.cli.commands.render",
    "captum_slingshot.cli.commands.audit", "captum_slingshot.cli.commands.study", "captum_slingshot.cli.parser",
    "captum_slingshot.metrics", "captum_slingshot.transforms", "captum_slingshot.transforms.slingshot",
    "captum_slingshot.transforms.slingshot.trainer", "captum_slingshot.experiments.errors",
    "captum_slingshot.experiments.demo_figure", "captum_slingshot.fv",
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
    assert result.attempted > 0 or name in NO_EXAMPLES, f"{name} has no examples"
