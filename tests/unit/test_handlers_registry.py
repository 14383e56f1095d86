"""Every registered handler has unit tests: each ``test_handlers_*`` module declares the API
keys it covers in ``COVERS`` and must call each of them; together they cover the registry."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from types import ModuleType

import tomyum.broker.handlers  # noqa: F401  (registers every handler)
from tomyum.broker.dispatch import HANDLERS

HERE = Path(__file__).parent


def _modules() -> list[ModuleType]:
    names = sorted(p.stem for p in HERE.glob("test_handlers_*.py") if p.stem != Path(__file__).stem)
    prefix = f"{__package__}." if __package__ else ""
    return [importlib.import_module(prefix + name) for name in names]


def _called_keys(module: ModuleType) -> set[int]:
    """The API keys a module passes first to ``call(...)`` or ``start(...)``."""
    keys: set[int] = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr not in ("call", "start") or not node.args:
            continue
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, int):
            keys.add(arg.value)
        elif isinstance(arg, ast.Name) and isinstance(getattr(module, arg.id, None), int):
            keys.add(getattr(module, arg.id))
    return keys


def test_every_registered_api_key_has_a_handler_test_module_covering_it() -> None:
    covered = {key for m in _modules() for key in m.COVERS}
    missing = {key: HANDLERS[key].name for key in HANDLERS if key not in covered}
    assert not missing, f"handlers without tests in tests/unit/test_handlers_*.py: {missing}"


def test_every_api_key_a_module_says_it_covers_is_called_there() -> None:
    for m in _modules():
        unused = set(m.COVERS) - _called_keys(m)
        assert not unused, f"{m.__name__} declares {unused} in COVERS but never calls them"
