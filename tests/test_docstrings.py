"""The Examples in the docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "captum_slingshot.paths",
    "captum_slingshot.data",
    "captum_slingshot.models",
    "captum_slingshot.fv.param",
    "captum_slingshot.fv.units",
    "captum_slingshot.fv.transforms",
    "captum_slingshot.fv.strategies",
    "captum_slingshot.fv.render",
    "captum_slingshot._lucent",
    "captum_slingshot.metrics.similarity",
    "captum_slingshot.metrics.preservation",
    "captum_slingshot.checks", "captum_slingshot.checks.base", "captum_slingshot.checks.divergence", "captum_slingshot.checks.natural", "captum_slingshot.checks.excess", "captum_slingshot.checks.field", "captum_slingshot.checks.audit", "captum_slingshot.checks.report",
    "captum_slingshot.weights",
    "captum_slingshot.evaluation",
    "captum_slingshot.interop",
    "captum_slingshot.report",
    "captum_slingshot.transforms.base",
    "captum_slingshot.transforms.target",
    "captum_slingshot.transforms.slingshot",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
