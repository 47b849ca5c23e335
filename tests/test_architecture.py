"""The layer rules of docs/architecture.md, checked on the source: what may import what, no
import cycle, and a map that names every module."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import jobyard

SRC = Path(jobyard.__file__).parent
MAP = SRC.parent.parent / "docs" / "architecture.md"
# What a route may use of the server: the core (through Services) and the leaf modules.
API_MAY_IMPORT = ("jobyard.core", "jobyard.errors", "jobyard.ids", "jobyard.config",
                  "jobyard.api")
# What a dialect may use besides the core and its own package: the shared API helpers.
DIALECT_HELPERS = ("jobyard.api.auth", "jobyard.api.deps", "jobyard.api.errors",
                   "jobyard.api.responses", "jobyard.api.sse", "jobyard.api.ratelimit",
                   "jobyard.api.validation", "jobyard.api.relay",
                   "jobyard.api.dialects.envelope", "jobyard.api.dialects.states")
CORE_MUST_NOT = ("fastapi", "starlette", "sqlalchemy", "httpx", "subprocess", "uvicorn",
                 "jobyard.api", "jobyard.store", "jobyard.daemon", "jobyard.executors",
                 "jobyard.runtime", "jobyard.operations", "jobyard.events", "jobyard.telemetry")


def _name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_name(p): p for p in SRC.rglob("*.py") if "migrations" not in p.parts}


@cache
def imports(name: str, typing_too: bool = False) -> frozenset[str]:
    """Every module ``name`` imports, at any depth of its code, except under TYPE_CHECKING
    (unless ``typing_too``); ``from package import module`` counts as the module, not the
    package."""
    tree = ast.parse(modules()[name].read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if (not typing_too and isinstance(node, ast.If)
                and "TYPE_CHECKING" in ast.unparse(node.test)):
            typing_only.update(id(sub) for sub in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & set(modules())
            found |= subs
            if len(subs) < len(node.names):
                found.add(node.module)
    return frozenset(found)


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_api_reaches_the_server_only_through_the_core():
    wrong = {f"{m} imports {i}" for m in modules() if m.startswith("jobyard.api")
             for i in imports(m) if i.startswith("jobyard") and i != "jobyard"
             and not _within(i, API_MAY_IMPORT)}
    assert wrong == set()


def test_a_dialect_imports_only_the_core_the_shared_helpers_and_itself():
    wrong = set()
    for m in modules():
        found = re.match(r"jobyard\.api\.dialects\.(\w+)\.", m)
        if not found:
            continue
        own = f"jobyard.api.dialects.{found[1]}"
        for i in imports(m):
            if i.startswith("jobyard.api") and not _within(i, (own, *DIALECT_HELPERS)):
                wrong.add(f"{m} imports {i}")
    assert wrong == set()


def test_no_route_touches_a_store():
    touched = [f"{m}:{node.lineno}" for m, path in modules().items()
               if m.startswith("jobyard.api")
               for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.Attribute) and node.attr in ("store", "_store")]
    assert touched == []


def test_the_core_imports_no_framework_and_no_outer_layer():
    wrong = {f"{m} imports {i}" for m in modules() if m.startswith("jobyard.core")
             for i in imports(m) if _within(i, CORE_MUST_NOT)}
    assert wrong == set()


def test_daemon_plugins_know_only_the_hook_interface_of_the_daemon():
    wrong = {f"{m} imports {i}" for m in modules() if m.startswith("jobyard.daemon.plugins.")
             for i in imports(m, typing_too=True)
             if _within(i, ("jobyard.daemon",))
             and not _within(i, ("jobyard.daemon.hooks", "jobyard.daemon.plugins"))}
    assert wrong == set()


def test_the_daemon_needs_no_typing_only_import_to_dodge_a_cycle():
    assert _cycles("jobyard.daemon", typing_too=True) == []


def test_there_is_no_import_cycle():
    assert _cycles("jobyard") == []


def _cycles(under: str, typing_too: bool = False) -> list[list[str]]:
    def ancestors(m: str) -> set[str]:
        parts = m.split(".")
        return {".".join(parts[:n]) for n in range(1, len(parts))}

    names = {m for m in modules() if _within(m, (under,))}
    graph = {m: (imports(m, typing_too) & names) - {m} - ancestors(m) for m in names}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_the_map_names_every_module_and_no_other():
    text = MAP.read_text()
    roots = {p.name for p in SRC.iterdir()}  # a name counts when it is a path in the package
    named = {n for n in re.findall(r"`([\w/]+\.py)`", text) if n.split("/")[0] in roots}
    present = {str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
               if "migrations" not in p.parts and p.name not in ("__init__.py", "__main__.py")}
    assert sorted(present - named) == [], "modules missing from docs/architecture.md"
    assert sorted(named - present) == [], "docs/architecture.md names modules that do not exist"
