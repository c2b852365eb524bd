"""The layout the README describes: no import circles between the project's modules, and the
top level of experiments/ holds only config files and entry points."""

from __future__ import annotations

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("tetris_jax", "dreamer_jax", "experiments")


def _modules() -> dict[str, str]:
    out = {}
    for pkg in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, pkg)):
            for f in files:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(folder, f), ROOT)[:-3].replace(os.sep, ".")
                    out[rel.removesuffix(".__init__")] = os.path.join(folder, f)
    return out


def _imports(path: str, modules: dict[str, str]) -> set[str]:
    """Project modules imported anywhere in the file (function-level imports included: a
    circle hidden in a function is still a circle)."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found.update(n for n in names if n in modules)
    return found


def test_no_import_circles():
    modules = _modules()
    graph = {m: _imports(p, modules) - {m} for m, p in modules.items()}
    # A package's __init__ re-exporting its submodules is not a circle of meaning.
    for m in graph:
        graph[m] = {d for d in graph[m] if not (m.startswith(d + ".") and d in PACKAGES)}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(d) :] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_experiments_top_level_is_configs_and_entry_points():
    folder = os.path.join(ROOT, "experiments")
    for f in sorted(os.listdir(folder)):
        if not f.endswith(".py") or f == "__init__.py":
            continue
        text = open(os.path.join(folder, f)).read()
        is_config = "def get_config(" in text
        is_entry = 'if __name__ == "__main__":' in text
        assert is_config != is_entry, f"experiments/{f}: neither a config file nor an entry point"
