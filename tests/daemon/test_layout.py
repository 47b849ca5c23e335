"""The daemon's module graph: no cycle, and plug-ins that know only the hook interface.

Every import counts, wherever it is written (inside a function, under TYPE_CHECKING): an
import that only dodges a cycle is still one."""

import ast
from pathlib import Path

import jobyard

SRC = Path(jobyard.__file__).parent
DAEMON = SRC / "daemon"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in DAEMON.rglob("*.py")}
    return {name: {m for m in imports(path) if m in modules and m != name}
            for name, path in modules.items()}


def test_the_daemon_modules_import_each_other_without_a_cycle():
    edges = graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join([*path, name]))
        if name in done:
            return
        for dep in sorted(edges[name]):
            visit(dep, [*path, name])
        done.add(name)

    for name in sorted(edges):
        visit(name, [])


def test_plugins_import_only_the_hook_interface_of_the_daemon():
    for path in (DAEMON / "plugins").glob("*.py"):
        of_daemon = {m for m in imports(path) if m.split(".")[:2] == ["jobyard", "daemon"]}
        others = {m for m in of_daemon if m.split(".")[2:3] not in (["hooks"], ["plugins"])}
        assert not others, f"{path.name} imports {sorted(others)}"
