"""The module layout keeps its promises: no import cycles in `summarizer/` (imports inside functions
count; `if TYPE_CHECKING:` ones do not, they never run), and command modules never import `cli`."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "summarizer"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, modules: set[str]) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module in modules:
                found.add(node.module)
            for alias in node.names:  # `from summarizer import inbox`
                if f"{node.module}.{alias.name}" in modules:
                    found.add(f"{node.module}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {f"summarizer.{p.stem}": p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    modules = set(files)
    graph = {}
    for name, path in files.items():
        graph[name] = _imports(ast.parse(path.read_text(encoding="utf-8")), modules) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_checker_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_in_the_package() -> None:
    graph = import_graph()
    assert "summarizer.pipeline" in graph["summarizer.inbox"]  # function-level imports are counted
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_command_modules_do_not_import_the_cli_back() -> None:
    graph = import_graph()
    offenders = [name for name in graph if name.startswith("summarizer.cli_") and "summarizer.cli" in graph[name]]
    assert offenders == []


def test_only_the_state_store_speaks_sql() -> None:
    users = sorted(p.stem for p in PACKAGE.glob("*.py") if "import sqlite3" in p.read_text(encoding="utf-8"))
    assert users == ["store"]
