"""The test folders mirror the packages, and their file names stay unique (see tests/README.md)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
NOT_MIRRORS = {"worlds"}  # fixtures, not tests


def test_test_file_names_are_unique_across_folders():
    """Without ``__init__.py`` files pytest's default import mode imports each test file by its base name: two
    ``test_x.py`` in different folders would be one module, so the second fails to import."""
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert not [n for n, c in names.items() if c > 1], names
    packages = [str(p.relative_to(TESTS)) for p in TESTS.rglob("__init__.py")]
    assert packages == ["worlds/__init__.py"], "test folders are not packages: the names above must stay unique"


def test_every_test_folder_mirrors_a_package_folder():
    folders = {p.parent.relative_to(TESTS) for p in TESTS.rglob("test_*.py")} - {Path(".")}
    missing = sorted(str(f) for f in folders if f.parts[0] not in NOT_MIRRORS and not (REPO / f).is_dir())
    assert not missing, f"test folders with no package folder of the same path: {missing}"


PACKAGES = ("creator", "training", "data_pipelines", "eval", "app")
LAYER = {"creator": 0, "training": 1, "data_pipelines": 1, "eval": 1, "app": 2}


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports, at any depth (lazy imports in functions count too)."""
    import ast

    modules = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [resolve(f"{node.module}.{a.name}") or resolve(node.module) for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [resolve(a.name) for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def room(module: str) -> str:
    """``creator.guard.check`` -> ``creator.guard``; a top-level package's modules -> the package."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "creator" and len(parts) > 2 else parts[0]


def test_no_import_circles_between_modules_or_rooms():
    graph = import_graph()
    assert len(graph) > 100 and "creator.pipeline.catalog" in graph  # the scan sees the project
    assert not cycles(graph), cycles(graph)
    rooms: dict[str, set[str]] = {}
    for src, targets in graph.items():
        rooms.setdefault(room(src), set()).update(room(t) for t in targets if room(t) != room(src))
    assert not cycles(rooms), f"rooms that import each other: {cycles(rooms)}"


def test_imports_flow_one_way():
    """``app`` -> (``training``, ``data_pipelines``, ``eval``) -> ``creator``; nothing imports upward."""
    upward = sorted(f"{src} -> {t}" for src, targets in import_graph().items() for t in targets
                    if LAYER[t.split(".")[0]] > LAYER[src.split(".")[0]])
    assert not upward, upward


def test_cycle_finder_finds_a_planted_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
