"""Imports point one way: core → datasets → data → layers → towers → registry → models →
training → export → demo, cli (README, "Layout").

The test reads every module's imports from its source (module level and inside
functions alike), so an upward import fails here even when it is deferred.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Lower rank = lower layer. A module may import its own rank or below.
RANKS = {
    "zoo.core": 0,
    "zoo.datasets": 1,
    "zoo.data": 2,
    "zoo.layers": 3,
    "zoo.towers": 4,
    "zoo.registry": 5,
    "zoo.models": 6,
    "zoo.training": 7,
    "zoo.export": 8,
    "zoo.demo": 9,
    "zoo.cli": 9,
    "zoo.testing": 9,
    # The package itself is the public façade over everything, loaded lazily.
    "zoo": 9,
}


def _module_name(path: pathlib.Path) -> str:
    if path.is_relative_to(ROOT / "datasets"):
        parts = ("zoo", "datasets", *path.relative_to(ROOT / "datasets").with_suffix("").parts)
    else:
        parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _sources() -> dict[str, pathlib.Path]:
    files = [*(ROOT / "zoo").rglob("*.py"), *(ROOT / "datasets").rglob("*.py")]
    return {_module_name(p): p for p in files if not p.name.endswith("_test.py")}


def _rank(module: str) -> int:
    best = max((prefix for prefix in RANKS if module == prefix or module.startswith(prefix + ".")), key=len)
    return RANKS[best]


def imports_of(path: pathlib.Path, module: str, known: set[str]) -> list[tuple[str, int, bool, str | None]]:
    """(imported zoo module, line, at module level, imported name) for each zoo import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "zoo" or alias.name.startswith("zoo."):
                    found.append((alias.name, node.lineno, id(node) in top_level, None))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not (base == "zoo" or base.startswith("zoo.")):
                continue
            for alias in node.names:
                # `from zoo import layers` imports the module zoo.layers.
                target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                found.append((target, node.lineno, id(node) in top_level, alias.name))
    return found


def _all_imports():
    sources = _sources()
    known = set(sources)
    return sources, {name: imports_of(path, name, known) for name, path in sources.items()}


def test_no_upward_import():
    sources, imports = _all_imports()
    upward = [
        f"{sources[module].relative_to(ROOT)}:{line} imports {target} "
        f"(rank {_rank(target)} above {module}'s rank {_rank(module)})"
        for module, found in imports.items()
        for target, line, _, _ in found
        if _rank(target) > _rank(module)
    ]
    assert not upward, "Upward imports (README, 'Layout'):\n" + "\n".join(upward)


def test_no_private_name_imported_from_another_module():
    sources, imports = _all_imports()
    private = [
        f"{sources[module].relative_to(ROOT)}:{line} imports {name} from {target}"
        for module, found in imports.items()
        for target, line, _, name in found
        if name and name.startswith("_") and not name.startswith("__") and target != module
    ]
    assert not private, "Private names used across modules:\n" + "\n".join(private)


def test_no_import_cycle_at_module_level():
    _, imports = _all_imports()
    graph = {module: {t for t, _, top, _ in found if top and t != module} for module, found in imports.items()}
    visiting, done, cycles = set(), set(), []

    def visit(node, trail):
        if node in done:
            return
        if node in visiting:
            cycle = trail[trail.index(node):] + [node]
            # A parent importing its own submodule is how packages are built, not a cycle.
            if not all(b.startswith(a + ".") or a.startswith(b + ".") for a, b in zip(cycle, cycle[1:], strict=False)):
                cycles.append(" -> ".join(cycle))
            return
        visiting.add(node)
        for target in sorted(graph.get(node, ())):
            visit(target, [*trail, node])
        visiting.discard(node)
        done.add(node)

    for module in sorted(graph):
        visit(module, [])
    assert not cycles, "Import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize(
    "module, source, expected",
    [
        ("zoo.registry", "import zoo.models\n", "zoo.models"),
        ("zoo.data.text", "from zoo.export.atomic import atomic_write_text\n", "zoo.export"),
        ("zoo.training.checkpoints", "from zoo.export import atomic\n", "zoo.export"),
        ("zoo.datasets.mnist_text.mnist_text_dataset_builder", "from zoo.data import mnist\n", "zoo.data"),
        ("zoo.data.ceilings", "def f():\n    import zoo\n", "zoo"),
        ("zoo.export.metadata", "def f():\n    from zoo import __version__\n", "zoo"),
    ],
)
def test_the_check_catches_the_imports_it_exists_for(tmp_path, module, source, expected):
    """Each import the layering once had is flagged when written again."""
    path = tmp_path / "module.py"
    path.write_text(source)
    known = set(_sources())
    targets = [target for target, _, _, _ in imports_of(path, module, known)]
    assert expected in [t if t in RANKS else next(p for p in RANKS if t.startswith(p + ".")) for t in targets]
    assert any(_rank(t) > _rank(module) for t in targets)
