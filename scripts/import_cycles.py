"""List the import circles between the project's modules (docs/architecture.md).

grimp reads every import statement, those inside functions included. A circle is a group of two
or more modules each of which reaches the others through imports (a strongly connected
component). Run: .venv/bin/python scripts/import_cycles.py
"""

import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("telehealth", "consults", "triage")


def circles(graph) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def main() -> int:
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    found = circles(graph)
    edges: dict[tuple[str, str], int] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            pair = (module.split(".")[0], imported.split(".")[0])
            if pair[0] != pair[1]:
                edges[pair] = edges.get(pair, 0) + 1
    print(f"{len(graph.modules)} modules; {len(found)} import circles", end="")
    print(f" ({sum(map(len, found))} modules in them)")
    for component in found:
        print(f"- {len(component)} modules: {', '.join(component)}")
    print(
        "imports between apps:",
        ", ".join(f"{a} -> {b}: {n}" for (a, b), n in sorted(edges.items())),
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
