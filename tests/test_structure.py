"""Structural rules: the public surface, and which layer may import what."""

from __future__ import annotations

import ast
import pathlib

import neurtmp
import neurtmp.protocol

ROOT = pathlib.Path(neurtmp.__file__).parent

#: Modules the sans-IO layers must never import (no I/O, no concurrency, no logging).
_IO_MODULES = {"socket", "gevent", "greenlet", "threading", "asyncio", "logging", "select", "selectors", "time"}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_public_names_exist_and_are_public() -> None:
    for module in (neurtmp, neurtmp.protocol):
        assert module.__all__, module
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name} is exported but missing"
            assert not name.startswith("_") or name == "__version__"


def test_codec_layer_imports_nothing_above_it() -> None:
    for path in sorted((ROOT / "codec").glob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in {"socket", "gevent", "greenlet", "threading", "asyncio"}, f"{path.name} imports {name}"
            if top == "neurtmp":
                assert name.startswith(("neurtmp.codec", "neurtmp.errors")), f"{path.name} imports {name}"


def test_protocol_layer_is_sans_io() -> None:
    files = sorted((ROOT / "protocol").glob("*.py"))
    assert len(files) >= 10
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in _IO_MODULES, f"{path.name} imports {name}"
            if top == "neurtmp":
                assert name.startswith(("neurtmp.protocol", "neurtmp.errors")), f"{path.name} imports {name}"


#: What the apps built on the framework may import from neurtmp: public packages only.
_APP_ALLOWED = ("neurtmp", "neurtmp.handlers", "neurtmp.codec", "neurtmp.errors", "neurtmp.protocol",
                "neurtmp.live", "neurtmp.relay")


def _app_files() -> list[pathlib.Path]:
    examples = ROOT.parent / "examples"
    return sorted([*(ROOT / "live").glob("*.py"), *(ROOT / "relay").glob("*.py"), *examples.rglob("*.py")])


def test_apps_use_only_the_public_api() -> None:
    files = _app_files()
    assert len(files) >= 8
    framework_modules = {"neurtmp.server", "neurtmp.connection", "neurtmp.stream", "neurtmp.client", "neurtmp.cli"}
    for path in files:
        for name in _imports(path):
            if not name.startswith("neurtmp"):
                continue
            assert not any(part.startswith("_") for part in name.split(".")), f"{path.name} imports {name}"
            assert name not in framework_modules, f"{path.name} reaches into {name}; use names from neurtmp"
            assert name.startswith(_APP_ALLOWED), f"{path.name} imports {name}"
