"""The package's structure, enforced: private names stay private, imports run one way, constructors stay
small, and every registry is the same shape. docs/ARCHITECTURE.md describes what is checked here."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path
from typing import Dict, Iterator, Set, Tuple

import pytest

import captum_slingshot

ROOT = Path(captum_slingshot.__file__).resolve().parent
#: layer -> the layers it may import (besides itself); the library never imports the application
#: layer (``experiments``) or the command line (``cli``), and ``experiments`` never imports ``cli``
LIBRARY = {"_utils", "paths", "fv", "figures", "weights", "compat", "data", "models", "metrics", "transforms",
           "interop", "evaluation", "checks", "attributions", "distributed", "<root>"}
ALLOWED: Dict[str, Set[str]] = {
    "_utils": set(),
    "paths": set(),
    "distributed": {"_utils"},
    "fv": {"_utils"},
    "figures": {"paths"},
    "weights": {"paths"},
    "compat": {"_utils", "fv"},
    "data": {"_utils", "fv", "paths"},
    "models": {"_utils", "data", "paths"},
    "metrics": {"_utils", "fv", "paths", "weights", "attributions"},
    "attributions": {"_utils"},
    "transforms": {"_utils", "fv", "paths", "attributions", "data"},
    "interop": {"_utils", "fv"},
    "evaluation": {"_utils", "fv", "metrics", "attributions"},
    "checks": {"_utils", "fv", "metrics", "paths", "figures", "attributions"},
    "<root>": LIBRARY,
    "experiments": LIBRARY,
    "cli": LIBRARY | {"experiments"},
}


def _modules() -> Iterator[Tuple[str, Path, ast.Module]]:
    for path in sorted(ROOT.rglob("*.py")):
        parts = ["captum_slingshot", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path, ast.parse(path.read_text())


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def _imports(module: str, path: Path, tree: ast.Module) -> Iterator[Tuple[int, str, str]]:
    """``(line, imported module, imported name)`` for every import of the package in a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, path.name == "__init__.py")
            for alias in node.names:
                yield node.lineno, target, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ""


def test_no_module_imports_a_private_name_of_another_outside_utils():
    bad = []
    known = {module for module, _, _ in _modules()}
    for module, path, tree in _modules():
        bound_modules = set()
        for line, target, name in _imports(module, path, tree):
            if not target.startswith("captum_slingshot") or "_utils" in target.split("."):
                continue
            if name.startswith("_") and not name.startswith("__"):
                bad.append(f"{module}:{line} imports {name} from {target}")
            if any(p.startswith("_") and p != "__init__" for p in target.split(".")[1:]) and "_utils" not in target:
                bad.append(f"{module}:{line} imports from the private module {target}")
            if f"{target}.{name}" in known:  # ``from . import lucent``: a module bound to a name
                bound_modules.add(name)
        for node in ast.walk(tree):  # module._private through an imported module of the package
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound_modules \
                    and node.attr.startswith("_") and not node.attr.startswith("__"):
                bad.append(f"{module}:{node.lineno} reads {node.value.id}.{node.attr}")
    assert not bad, "\n".join(bad)


def test_imports_run_one_way_and_the_library_never_imports_the_application():
    bad = []
    for module, path, tree in _modules():
        layer = _layer(module)
        for line, target, _ in _imports(module, path, tree):
            if not target.startswith("captum_slingshot.") or target == "captum_slingshot":
                continue
            other = _layer(target)
            if other != layer and other not in ALLOWED[layer]:
                bad.append(f"{module}:{line} ({layer}) imports {target} ({other})")
    assert not bad, "\n".join(bad)


def test_lucent_is_imported_by_one_module_only():
    users = {module for module, path, tree in _modules() for _, target, _ in _imports(module, path, tree)
             if target == "lucent" or target.startswith("lucent.")}
    assert users == {"captum_slingshot.compat.lucent"}


def _public_classes():
    for info in pkgutil.walk_packages(captum_slingshot.__path__, "captum_slingshot."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == info.name and not name.startswith("_"):
                yield f"{info.name}.{name}", obj


def test_no_public_constructor_takes_more_than_12_parameters():
    sizes = {}
    for name, cls in _public_classes():
        try:
            params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        except (TypeError, ValueError):
            continue
        sizes[name] = len(params)
    assert sizes["captum_slingshot.transforms.slingshot.transform.GradientSlingshot"] == 10
    too_big = {k: v for k, v in sizes.items() if v > 12}
    assert not too_big, too_big


def test_every_registry_is_one_shape():
    from captum_slingshot._utils.registry import Registry
    from captum_slingshot.checks import CHECKS, available_checks
    from captum_slingshot.fv import PARAMETRIZATIONS, STRATEGIES, TRANSFORM_SETS, available_parametrizations
    from captum_slingshot.fv import available_strategies, available_transform_sets
    from captum_slingshot.models import MODELS, available_models
    from captum_slingshot.transforms import TRANSFORMS, available_transforms

    pairs = [(TRANSFORMS, available_transforms), (CHECKS, available_checks), (STRATEGIES, available_strategies),
             (TRANSFORM_SETS, available_transform_sets), (PARAMETRIZATIONS, available_parametrizations),
             (MODELS, available_models)]
    for registry, available in pairs:
        assert isinstance(registry, Registry)
        listing = available()
        assert list(listing) == sorted(registry) and all(isinstance(d, str) and d for d in listing.values()), listing
        with pytest.raises(ValueError, match=f"unknown {registry.kind} 'no_such_name'"):
            registry.get("no_such_name")
