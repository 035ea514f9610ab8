"""The package's layers (docs/development.rst, "Layout"): every module is in
a layer of the table drawn there, imports only from its own layer and the
layers below, with no import cycle, and never imports a ``_private`` name from
another layer. The table is read from the docs page, so the page and this
test cannot disagree; each rule has its failing twin on a synthetic package
in ``tmp_path``."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEVELOPMENT = ROOT / "docs" / "development.rst"
PACKAGE = "vpc_requests"


@dataclass(frozen=True)
class Layer:
    rank: int
    name: str
    entries: tuple[str, ...]


@dataclass(frozen=True)
class Import:
    line: int
    module: str  # the file key of the imported module ("pkg.sub.__init__" for a package)
    name: str | None  # the name taken from it, None for the module itself


def read_layers(text: str) -> list[Layer]:
    """The rows of the list-table after the ``.. _layers:`` label: its first
    cell ``<rank> <name>``, its second the ``modules`` (a package stands for
    every module in it; ``pkg.__init__`` for the package's own file)."""
    _, _, after = text.partition(".. _layers:")
    lines = after.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(".. list-table::"))
    table = []
    for line in lines[start + 1:]:
        if line and not line.startswith(" "):
            break
        table.append(line)
    layers = []
    for row in re.split(r"^   \* - ", "\n".join(table), flags=re.MULTILINE)[1:]:
        cells = re.split(r"^     - ", row, flags=re.MULTILINE)
        head = re.fullmatch(r"(\d+) (\w+)", cells[0].strip())
        if head is None:  # the header row
            continue
        layers.append(Layer(int(head.group(1)), head.group(2), tuple(re.findall(r"``([\w.]+)``", cells[1]))))
    return layers


def package_files(root: Path, package: str) -> dict[str, Path]:
    """``{file key: path}``: ``pkg.sub.mod`` for a module, ``pkg.sub.__init__``
    for a package's own file."""
    return {
        ".".join(path.relative_to(root).with_suffix("").parts): path
        for path in sorted((root / package).rglob("*.py"))
    }


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (its ``else``
    runs)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imports_of(key: str, path: Path, files: dict[str, Path]) -> tuple[list[Import], list[tuple[int, str, str]]]:
    """The runtime imports of one file that stay inside the package, and the
    ``(line, module key, attribute)`` of every ``_private`` attribute read off
    a module it imported by name (``from . import abort``; ``abort._x``)."""
    package = key.rsplit(".", 1)[0]  # pkg.sub for pkg.sub.mod and for pkg.sub.__init__

    def file_key(module: str) -> str | None:
        if module in files and not module.endswith(".__init__"):
            return module
        if f"{module}.__init__" in files:
            return f"{module}.__init__"
        return None

    found: list[Import] = []
    aliases: dict[str, str] = {}
    nodes = list(_runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))))
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = file_key(alias.name)
                if target is not None:
                    found.append(Import(node.lineno, target, None))
                    if alias.asname:
                        aliases[alias.asname] = target
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = file_key(f"{base}.{alias.name}")
                if submodule is not None:
                    found.append(Import(node.lineno, submodule, None))
                    aliases[alias.asname or alias.name] = submodule
                    continue
                target = file_key(base)
                if target is not None:
                    found.append(Import(node.lineno, target, alias.name))
    private = [
        (node.lineno, aliases[node.value.id], node.attr)
        for node in nodes
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
        and _is_private(node.attr)
    ]
    return found, private


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def layer_of(key: str, layers: list[Layer]) -> Layer | None:
    matches = [
        (len(entry), layer) for layer in layers for entry in layer.entries
        if key == entry or key.startswith(entry + ".")
    ]
    return max(matches, key=lambda match: match[0])[1] if matches else None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(root: Path, package: str, layers: list[Layer]) -> list[str]:
    """Every breach of the layering of ``package`` under ``root``, as a line
    of text naming the file and line; empty when the package keeps to it."""
    files = package_files(root, package)
    problems: list[str] = []
    for layer in layers:
        for entry in layer.entries:
            if not any(key == entry or key.startswith(entry + ".") for key in files):
                problems.append(f"{entry}: in layer {layer.rank} {layer.name} but no such module")
    graph: dict[str, set[str]] = {}
    for key, path in files.items():
        where = path.relative_to(root)
        own = layer_of(key, layers)
        if own is None:
            problems.append(f"{where}: {key} is in no layer")
            continue
        found, private = imports_of(key, path, files)
        graph[key] = {found_import.module for found_import in found} - {key}
        for found_import in found:
            other = layer_of(found_import.module, layers)
            if other is None:
                continue  # reported for that module
            what = found_import.module + (f".{found_import.name}" if found_import.name else "")
            if other.rank > own.rank:
                problems.append(
                    f"{where}:{found_import.line}: upward import of {what} "
                    f"(layer {other.rank} {other.name}) from layer {own.rank} {own.name}"
                )
            if found_import.name is not None and _is_private(found_import.name) and other.rank != own.rank:
                problems.append(f"{where}:{found_import.line}: private name {what} imported across layers")
        for line, module, attr in private:
            other = layer_of(module, layers)
            if other is not None and other.rank != own.rank:
                problems.append(f"{where}:{line}: private name {module}.{attr} used across layers")
    for cycle in _cycles(graph):
        problems.append(f"import cycle: {' <-> '.join(cycle)}")
    return problems


LAYERS = read_layers(DEVELOPMENT.read_text(encoding="utf-8"))


def test_the_docs_draw_the_layers_in_order() -> None:
    assert [layer.rank for layer in LAYERS] == list(range(len(LAYERS))) and len(LAYERS) >= 5
    assert LAYERS[-1].name == "public" and f"{PACKAGE}.__init__" in LAYERS[-1].entries
    entries = [entry for layer in LAYERS for entry in layer.entries]
    assert len(entries) == len(set(entries))


def test_the_package_keeps_to_its_layers() -> None:
    assert violations(ROOT, PACKAGE, LAYERS) == []


def test_every_module_but_the_public_ones_is_private() -> None:
    public = {f"{PACKAGE}.__init__", f"{PACKAGE}.__main__", f"{PACKAGE}.testing", f"{PACKAGE}.pytest_plugin"}
    named = {key for key in package_files(ROOT, PACKAGE) if not any(
        part.startswith("_") for part in key.split(".")[1:])}
    assert named | {f"{PACKAGE}.__init__", f"{PACKAGE}.__main__"} == public


# -- the failing twins: a synthetic package that breaks each rule once --------------------

TABLE = """\
.. _layers:

.. list-table:: Layers
   :header-rows: 1

   * - Layer
     - Modules
   * - 0 base
     - ``pkg._low``, ``pkg._ring``
   * - 1 middle
     - ``pkg._mid``
   * - 2 public
     - ``pkg.__init__``

After the table.
"""

CLEAN = {
    "__init__.py": "from ._mid.api import run\n",
    "_low.py": "from typing import TYPE_CHECKING\n"
               "if TYPE_CHECKING:\n    from ._mid.api import run  # typing only: allowed\n"
               "_secret = 1\nvalue = 2\n",
    "_ring/__init__.py": "",
    "_ring/a.py": "from . import b  # same layer, no cycle\n",
    "_ring/b.py": "_inside = 1\n",
    "_mid/__init__.py": "",
    "_mid/api.py": "from .._low import value\nfrom .. import _low\nfrom .helper import _shared\n"
                   "def run():\n    return _low.value\n",
    "_mid/helper.py": "_shared = 1  # private, imported only inside its layer\n",
    "_mid/leaf.py": "x = 1\n",
}


def make_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_table_is_read_as_written() -> None:
    assert read_layers(TABLE) == [
        Layer(0, "base", ("pkg._low", "pkg._ring")), Layer(1, "middle", ("pkg._mid",)),
        Layer(2, "public", ("pkg.__init__",)),
    ]


def test_a_package_that_keeps_the_rules_passes(tmp_path: Path) -> None:
    make_package(tmp_path, CLEAN)
    assert violations(tmp_path, "pkg", read_layers(TABLE)) == []


@pytest.mark.parametrize(("change", "expected"), [
    ({"_low.py": "from ._mid import leaf\n"},
     r"pkg/_low.py:1: upward import of pkg\._mid\.leaf \(layer 1 middle\) from layer 0 base"),
    ({"_mid/leaf.py": "def later():\n    from .. import run\n"},
     r"pkg/_mid/leaf.py:2: upward import of pkg\.__init__\.run \(layer 2 public\) from layer 1 middle"),
    ({"_mid/api.py": "from .._low import _secret\n"},
     r"pkg/_mid/api.py:1: private name pkg\._low\._secret imported across layers"),
    ({"_mid/api.py": "from .. import _low\nx = _low._secret\n"},
     r"pkg/_mid/api.py:2: private name pkg\._low\._secret used across layers"),
    ({"_ring/b.py": "def later():\n    from .a import x\n"},
     r"import cycle: pkg\._ring\.a <-> pkg\._ring\.b"),
    ({"stray.py": ""}, r"pkg/stray.py: pkg\.stray is in no layer"),
])
def test_each_rule_fails_when_broken(tmp_path: Path, change: dict[str, str], expected: str) -> None:
    make_package(tmp_path, {**CLEAN, **change})
    problems = violations(tmp_path, "pkg", read_layers(TABLE))
    assert len(problems) == 1 and re.fullmatch(expected, problems[0]), problems


def test_a_stale_row_fails(tmp_path: Path) -> None:
    make_package(tmp_path, CLEAN)
    table = TABLE.replace("``pkg._ring``", "``pkg._ring``, ``pkg._gone``")
    assert violations(tmp_path, "pkg", read_layers(table)) == [
        "pkg._gone: in layer 0 base but no such module"]
