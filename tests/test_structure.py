"""Structural rules: the public surface, and which layer may import what."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

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
                # the protocol layer is above codec: its media-message peeks are shared
                assert name.startswith(("neurtmp.codec", "neurtmp.errors", "neurtmp.protocol")), \
                    f"{path.name} imports {name}"


def test_protocol_layer_is_sans_io() -> None:
    files = sorted((ROOT / "protocol").glob("*.py"))
    assert len(files) >= 10
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in _IO_MODULES, f"{path.name} imports {name}"
            if top == "neurtmp":
                assert name.startswith(("neurtmp.protocol", "neurtmp.errors")), f"{path.name} imports {name}"


#: What the apps built on the framework may import from neurtmp: the public API only.
_APP_ALLOWED = ("neurtmp", "neurtmp.handlers", "neurtmp.codec", "neurtmp.errors", "neurtmp.names", "neurtmp.lazy",
                "neurtmp.fanout")
#: Real, one-way dependencies between apps (importer -> importable).
_APP_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "ingest": ("neurtmp.live", "neurtmp.live.http", "neurtmp.relay", "neurtmp.access.tokens"),
}


def _app_files() -> list[tuple[str, pathlib.Path]]:
    examples = ROOT.parent / "examples"
    apps = ("live", "relay", "ingest", "proxy", "access", "record")
    files = [(path.parent.name, path) for app in apps for path in (ROOT / app).glob("*.py")]
    return sorted([*files, *(("examples", path) for path in examples.rglob("*.py"))])


def test_apps_use_only_the_public_api() -> None:
    files = _app_files()
    assert len(files) >= 8
    for app, path in files:
        own = f"neurtmp.{app}"
        allowed = (*_APP_ALLOWED, own, *_APP_DEPENDENCIES.get(app, ()))
        for name in _imports(path):
            if not name.startswith("neurtmp"):
                continue
            assert not any(part.startswith("_") for part in name.split(".")), f"{path.name} imports {name}"
            assert name in allowed or name.startswith(own + "."), f"{path.name} ({app}) imports {name}"


def _private_reaches(path: pathlib.Path) -> list[str]:
    """`other._private` uses in a file: attributes with one leading underscore read on
    anything but self, cls, super() or a class defined in the same file."""
    tree = ast.parse(path.read_text(), str(path))
    own_classes = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and (owner.id in ("self", "cls") or owner.id in own_classes):
            continue
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
            continue
        found.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_objects_use_each_other_through_public_names_only() -> None:
    generated = ROOT / "ingest" / "proto"
    reaches = [reach for path in sorted(ROOT.rglob("*.py")) if generated not in path.parents
               for reach in _private_reaches(path)]
    assert not reaches, "private attributes used across objects:\n" + "\n".join(reaches)


def _runtime_imports(path: pathlib.Path, package: str) -> set[str]:
    """neurtmp modules `path` imports when it runs (TYPE_CHECKING blocks left out)."""
    tree = ast.parse(path.read_text(), str(path))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name.startswith("neurtmp")}


def test_the_runtime_import_graph_has_no_cycles() -> None:
    modules: dict[str, pathlib.Path] = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        # A module's own parent packages are already being imported: not an edge.
        graph[name] = {dep for dep in _runtime_imports(path, package)
                       if dep in modules and dep != name and not name.startswith(dep + ".")}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(dep):], dep]))
            if dep not in state:
                visit(dep, [*trail, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_the_protocol_core_imports_no_io_or_media_libraries() -> None:
    code = ("import sys, neurtmp.protocol; "
            "print(sorted(m for m in ('gevent', 'av', 'numpy', 'greenlet', 'grpc') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout
