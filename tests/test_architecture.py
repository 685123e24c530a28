"""The import rules of docs/architecture.md, checked on the code itself.

``lint-imports`` runs the import-linter contracts of pyproject.toml (layers, plain-Python engines,
no ML runtime imported by web-facing code, no import circles). import-linter cannot tell an import
at module level from one inside a function; the AST walk below does, for the rule that matters at
import time: nothing the web process imports loads torch, ctranslate2, onnxruntime or llama_cpp.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("telehealth", "consults", "triage")
ML_RUNTIMES = ("torch", "ctranslate2", "onnxruntime", "llama_cpp")
# Engines: plain Python the workers load lazily. Some of their modules are only for training
# and import a runtime at the top (triage/vision/wound_net.py); what matters is that nothing the
# web process imports reaches them at module level.
ENGINES = ("consults.speech", "triage.vision")
# The notes engine shares its folder with the Django side of notes.
NOTES_DJANGO_SIDE = {"fhir", "selectors", "services", "tasks", "views"}


def _lint_imports() -> list[str]:
    found = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("lint-imports is not installed: pip install -r requirements/test.txt")
    return [found, "--no-cache"]


def test_import_contracts_are_kept():
    result = subprocess.run(  # noqa: S603 - our own venv's tool, fixed arguments
        _lint_imports(), cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout, result.stdout


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


def _top_level_imports(path: Path, module: str) -> set[str]:
    """Modules imported when ``module`` is imported: its statements outside functions (class
    bodies run at import too); ``if TYPE_CHECKING:`` blocks never run."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    imported: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                imported.add(base)
                imported.update(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    visit([n for n in getattr(node, field, []) if isinstance(n, ast.stmt)])

    visit(tree.body)
    return imported


def _loaded_at_import(modules: dict[str, Path], start: str) -> dict[str, list[str]]:
    """Every module that importing ``start`` loads (parents included), with the path there."""
    paths = {start: [start]}
    todo = [start]
    while todo:
        module = todo.pop()
        for name in _top_level_imports(modules[module], module):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                target = ".".join(parts[:depth])
                if target not in paths and (target in modules or target in ML_RUNTIMES):
                    paths[target] = [*paths[module], target]
                    if target in modules:
                        todo.append(target)
    return paths


def _web_facing(modules: dict[str, Path]) -> list[str]:
    def engine(name: str) -> bool:
        if any(name == e or name.startswith(f"{e}.") for e in ENGINES):
            return True
        parts = name.split(".")
        return parts[:2] == ["consults", "notes"] and (
            len(parts) == 2 or parts[2] not in NOTES_DJANGO_SIDE
        )

    return sorted(name for name in modules if not engine(name))


def test_web_facing_modules_load_no_ml_runtime_at_import():
    modules = _modules()
    web = _web_facing(modules)
    assert "consults.transcripts.views" in web and "consults.notes.views" in web
    assert "consults.room.views" in web and "triage.photos.views" in web
    assert "consults.notes.engine" not in web and "triage.vision.skin" not in web
    loaded = {}
    for module in web:
        for target, path in _loaded_at_import(modules, module).items():
            if target in ML_RUNTIMES:
                loaded[module] = " -> ".join(path)
    assert not loaded, "\n".join(loaded.values())


def test_the_module_level_walk_sees_a_runtime_import(tmp_path):
    """The walk above must fail on a top-level runtime import, and only on that."""
    source = tmp_path / "probe.py"
    source.write_text(
        "import os\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import llama_cpp\n"
        "def load():\n    import onnxruntime\ntry:\n    import torch\nexcept ImportError:\n"
        "    pass\n"
    )
    assert _top_level_imports(source, "probe") == {"os", "typing", "typing.TYPE_CHECKING", "torch"}


def test_the_contracts_list_every_notes_engine_module():
    """The notes engine shares consults/notes with its Django side: a new engine module must be
    added to the "engines" contract and to the no-ML-runtime contract's exemptions
    (pyproject.toml), or it would escape the one check and break the other."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    engines = next(c for c in config["contracts"] if c["id"] == "engines")
    listed = {m for m in engines["source_modules"] if m.startswith("consults.notes.")}
    on_disk = {
        name
        for name in _modules()
        if name.startswith("consults.notes.") and name.split(".")[2] not in NOTES_DJANGO_SIDE
    }
    assert on_disk == listed
    # The no-ML-runtime contract lets the same engine modules (and only them) load a runtime.
    runtime = next(c for c in config["contracts"] if c["id"] == "no-ml-runtime-in-web")
    exempt = {
        rule.split(" -> ")[0]
        for rule in runtime["ignore_imports"]
        if rule.startswith("consults.notes.")
    }
    assert exempt == listed


def test_no_module_import_circle_counting_function_level_imports():
    """grimp reads every import statement, the ones inside functions too (a lazy import is still
    a dependency): no group of modules may import each other round in a circle."""
    import grimp

    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    circles = [
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(importer=imported, imported=importer)
    ]
    assert not circles, circles
