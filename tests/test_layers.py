"""The import rules of docs/architecture.md, checked by parsing every module under ember/ (importing none).

Layers, lowest first: ember.llm and ember.retrieval (1) < ember.agents (2) < ember.platform (3) <
ember.evals (4) < ember.ui, ember.commands, ember.cli (5); root-level helpers such as ember.home are 0.
Each rule's test fails with every offending ``file:line: import``; the self-tests below run the checker on a
small package with one violation of each rule, so no rule can pass vacuously.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

EMBER_DIR = Path(__file__).resolve().parents[1] / "ember"

LAYERS = {
    "llm": 1,
    "retrieval": 1,
    "agents": 2,
    "platform": 3,
    "evals": 4,
    "ui": 5,
    "commands": 5,
    "cli": 5,
}
TOP = ("ui", "commands", "cli")  # what only the command line (ember.cli, ember.commands) may import
COMMAND_LINE = ("ember.cli", "ember.commands")

FACADE_CLIENTS = ("ember.platform.api", "ember.ui")
FACADE = (
    "ember.platform.service",
    "ember.platform.types",
    "ember.platform.errors",
    "ember.platform.settings",
)

STORAGE_INTERNALS = tuple(
    [
        f"ember.platform.{name}"
        for name in (
            "db",
            "tables",
            "migrate",
            "index_sync",
            "conversations",
            "api_keys",
            "ingest_jobs",
            "chunks",
            "answers",
        )
    ]
    + [f"ember.retrieval.{name}" for name in ("store", "collection_index", "dense", "bm25", "embedder")]
)


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, e.g. ember.platform.service
    path: str  # its file, e.g. ember/platform/service.py
    line: int
    target: str  # the imported module: a submodule named in `from x import y` counts as x.y
    runtime: bool  # False inside `if TYPE_CHECKING:`

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.target}"


def module_names(package_dir: Path) -> dict[str, Path]:
    """Dotted name → file for every module of the package; a package's name maps to its __init__.py."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, path: str, modules: dict[str, Path]) -> None:
        self.module, self.path, self.modules = module, path, modules
        self.package = module if is_package else module.rpartition(".")[0]
        self.root = module.split(".")[0]
        self.runtime = True
        self.found: list[Import] = []

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self.visit(node.test)
        self.runtime = False
        for statement in node.body:
            self.visit(statement)
        self.runtime = True
        for statement in node.orelse:
            self.visit(statement)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")[: len(self.package.split(".")) - (node.level - 1)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        for alias in node.names:
            submodule = f"{origin}.{alias.name}"
            self._add(submodule if submodule in self.modules else origin, node.lineno)

    def _add(self, target: str, line: int) -> None:
        if target == self.root or target.startswith(self.root + "."):
            self.found.append(Import(self.module, self.path, line, target, self.runtime))


@dataclass
class Package:
    modules: dict[str, Path]
    imports: list[Import]  # module level, in functions and under TYPE_CHECKING

    def layer_of(self, module: str) -> int | None:
        """0 for the package and its root-level helper modules, None for a subpackage with no layer."""
        parts = module.split(".")
        if len(parts) > 1 and parts[1] in LAYERS:
            return LAYERS[parts[1]]
        is_helper = len(parts) == 2 and self.modules.get(module, Path()).name != "__init__.py"
        return 0 if len(parts) == 1 or is_helper else None


def collect_imports(package_dir: Path) -> Package:
    modules = module_names(package_dir)
    imports = []
    for module, path in modules.items():
        relative = path.relative_to(package_dir.parent).as_posix()
        collector = _ImportCollector(module, path.name == "__init__.py", relative, modules)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), relative))
        imports += dict.fromkeys(collector.found)  # `from x import a, b` is one import of x
    return Package(modules, imports)


def _within(module: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer_violations(package: Package) -> list[str]:
    bad = []
    for imp in package.imports:
        source, target = package.layer_of(imp.source), package.layer_of(imp.target)
        if source is None or target is None:
            bad.append(f"{imp} (no layer for {imp.source if source is None else imp.target})")
        elif target > source:
            bad.append(f"{imp} (layer {target} imported from layer {source})")
        elif _within(imp.target, tuple(f"ember.{top}" for top in TOP)):
            own = imp.target.split(".")[:2] == imp.source.split(".")[:2]
            if not own and not _within(imp.source, COMMAND_LINE):
                bad.append(f"{imp} (only the command line imports ember.ui, ember.commands, ember.cli)")
    return bad


def facade_violations(package: Package) -> list[str]:
    bad = []
    for imp in package.imports:
        for client in FACADE_CLIENTS:
            if _within(imp.source, client) and not (
                _within(imp.target, FACADE + (client,)) or package.layer_of(imp.target) == 0
            ):
                bad.append(str(imp))
    return bad


def cli_violations(package: Package) -> list[str]:
    return [
        str(imp)
        for imp in package.imports
        if _within(imp.source, COMMAND_LINE) and _within(imp.target, STORAGE_INTERNALS)
    ]


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components of size > 1, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def import_cycles(package: Package) -> list[str]:
    """Each self-import, and each strongly connected group of files, with the imports that join it."""
    runtime = [imp for imp in package.imports if imp.runtime and imp.target in package.modules]
    bad = [f"{imp} (imports itself)" for imp in runtime if imp.target == imp.source]
    graph: dict[str, set[str]] = {}
    for imp in runtime:
        if imp.target != imp.source:
            graph.setdefault(imp.source, set()).add(imp.target)
    for component in _strongly_connected(graph):
        members = set(component)
        edges = [str(imp) for imp in runtime if imp.source in members and imp.target in members]
        bad.append("cycle between " + ", ".join(component) + ":\n    " + "\n    ".join(edges))
    return bad


EMBER = collect_imports(EMBER_DIR)


def _report(title: str, violations: list[str]) -> str:
    return f"{title} ({len(violations)}):\n  " + "\n  ".join(violations)


def test_no_module_imports_a_higher_layer():
    violations = layer_violations(EMBER)
    assert not violations, _report("imports from a higher layer", violations)


def test_api_and_tui_use_only_the_facade():
    violations = facade_violations(EMBER)
    title = "ember.platform.api and ember.ui import beyond service, types, errors and settings"
    assert not violations, _report(title, violations)


def test_cli_does_not_reach_into_storage_or_indexes():
    violations = cli_violations(EMBER)
    assert not violations, _report("the CLI imports storage or index internals", violations)


def test_no_import_cycles():
    violations = import_cycles(EMBER)
    assert not violations, _report("import cycles", violations)


def test_the_checker_sees_relative_function_level_and_type_checking_imports():
    sources = {imp.source for imp in EMBER.imports}
    assert {"ember.cli", "ember.platform.service", "ember.llm.inference.engine"} <= sources
    service = [imp for imp in EMBER.imports if imp.source == "ember.platform.service"]
    assert any(not imp.runtime for imp in service)  # its heavy imports sit under TYPE_CHECKING


# --- the checker on a package with one violation of each rule ------------------------------------------
FAKE = {
    "__init__.py": "",
    "home.py": "",
    "llm/__init__.py": "",
    "llm/engine.py": "from ..platform import service\n",  # layer 1 → 3
    "retrieval/__init__.py": "",
    "retrieval/store.py": "",
    "agents/__init__.py": "",
    "platform/__init__.py": "",
    "platform/service.py": "from . import answers\nimport ember.home\n",
    "platform/answers.py": "def f():\n    from ember.platform.service import EmberService\n",  # a cycle
    "platform/types.py": (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ember.platform import types\n"
    ),
    "platform/db.py": "import ember.platform.db\n",  # a self-import
    "platform/api/app.py": "from ember.platform.service import Service\nfrom ember.platform.db import x, y\n",
    "evals/__init__.py": "import ember.ui.app\n",  # only the command line imports the TUI
    "ui/__init__.py": "",
    "ui/app.py": "from ember.platform import service, types\nfrom .widgets import Box\n",
    "ui/widgets.py": "from ember.retrieval.store import IndexStore\n",
    "commands/__init__.py": "",
    "commands/search.py": (
        "from typing import TYPE_CHECKING\nfrom ember.ui import app\n"
        "if TYPE_CHECKING:\n    from ember.retrieval.store import IndexStore\n"
    ),
    "cli.py": "from ember.commands import search\n",
}


@pytest.fixture
def fake(tmp_path) -> Package:
    for name, text in FAKE.items():
        path = tmp_path / "ember" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return collect_imports(tmp_path / "ember")


def test_layer_rule_reports_upward_and_tui_imports(fake):
    assert layer_violations(fake) == [
        "ember/evals/__init__.py:1: ember.ui.app (layer 5 imported from layer 4)",
        "ember/llm/engine.py:1: ember.platform.service (layer 3 imported from layer 1)",
    ]


def test_facade_rule_reports_storage_imports_from_api_and_tui(fake):
    assert facade_violations(fake) == [
        "ember/platform/api/app.py:2: ember.platform.db",
        "ember/ui/widgets.py:1: ember.retrieval.store",
    ]


def test_cli_rule_reports_index_internals_even_under_type_checking(fake):
    assert cli_violations(fake) == ["ember/commands/search.py:4: ember.retrieval.store"]


def test_cycle_rule_reports_function_level_cycles_and_self_imports_but_not_type_checking(fake):
    assert import_cycles(fake) == [
        "ember/platform/db.py:1: ember.platform.db (imports itself)",
        "cycle between ember.platform.answers, ember.platform.service:\n"
        "    ember/platform/answers.py:2: ember.platform.service\n"
        "    ember/platform/service.py:1: ember.platform.answers",
    ]
