"""The one-way dependencies of DESIGN.md, checked on the source."""

import ast
from pathlib import Path

from tests.helpers import REPO

PACKAGE = REPO / "cellbench"

# Top to bottom: a unit (a subpackage or top module of cellbench, or the jobs/ scripts) imports
# only units of layers below its own. Written out in README.md's "Architecture" section.
LAYERS = [
    "jobs",
    "execution",
    "cli",
    "tasks",
    "stages",
    "runners",
    "report",
    "evaluate",
    "models",
    "splits",
    "sampling",
    "features",
    "crops",
    "ground_truth",
    "segment",
    "align",
    "data",
    "allocation",
    "status",
    "io",
    "config",
    "paths",
    "names",
    "errors",
]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def modules_outside(folder: str) -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if folder not in p.relative_to(PACKAGE).parts]


def module_name(path: Path, package_dir: Path) -> list[str]:
    """Dotted name of a source file of the package, as parts (``__init__`` dropped)."""
    parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def absolute_imports(path: Path, package_dir: Path) -> set[str]:
    """Every module a file imports, anywhere in it (functions too), relative imports resolved.

    ``from pkg import name`` also yields ``pkg.name``: the name may be a submodule.
    """
    here = module_name(path, package_dir)
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def unit_of(module: str, package: str) -> str | None:
    """The subpackage or top module of `package` that `module` lies in; None outside it."""
    parts = module.split(".")
    if parts[0] != package or len(parts) < 2:
        return None
    return parts[1]


def import_graph(package_dir: Path, extra: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """Package-level imports: each unit of the package -> the other units it imports.

    Parameters
    ----------
    package_dir : Path
        The package's folder; its units are its subpackages and top modules.
    extra : dict of str to Path, optional
        More units outside the package, by name: a folder of scripts importing it.
    """
    package = package_dir.name
    graph: dict[str, set[str]] = {}
    sources = [(p, p.relative_to(package_dir).parts[0]) for p in package_dir.rglob("*.py")]
    for name, folder in (extra or {}).items():
        sources += [(p, name) for p in folder.rglob("*.py")]
    for path, unit in sources:
        unit = unit.removesuffix(".py")
        if unit == "__init__":
            continue  # the package's own __init__: metadata only
        targets = graph.setdefault(unit, set())
        root = package_dir if path.is_relative_to(package_dir) else path.parent
        known = {unit_of(m, package) for m in absolute_imports(path, root)}
        targets |= {u for u in known if u is not None and u != unit and _exists(package_dir, u)}
    return graph


def _exists(package_dir: Path, unit: str) -> bool:
    """Whether `unit` is a subpackage or top module (not a name imported from __init__)."""
    return (package_dir / unit).is_dir() or (package_dir / f"{unit}.py").is_file()


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one unit (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def upward_imports(graph: dict[str, set[str]], layers: list[str]) -> list[tuple[str, str]]:
    """Imports of a unit from a layer above its own, as (importer, imported).

    Units missing from `layers` are left to `test_every_unit_has_a_layer`.
    """
    rank = {unit: k for k, unit in enumerate(layers)}
    return sorted(
        (unit, target)
        for unit, targets in graph.items()
        for target in targets
        if unit in rank and target in rank and rank[target] < rank[unit]
    )


def cellbench_graph() -> dict[str, set[str]]:
    return import_graph(PACKAGE, extra={"jobs": REPO / "jobs"})


def test_only_the_execution_layer_knows_submitit():
    offenders = [
        p
        for p in modules_outside("execution")
        if any(m.startswith("submitit") for m in imported_modules(p))
    ]
    assert offenders == []


def test_stage_modules_do_not_import_stages_or_execution():
    stage_packages = ["io", "data", "segment", "crops", "features", "models", "evaluate", "report"]
    offenders = []
    for package in stage_packages:
        for path in (PACKAGE / package).rglob("*.py"):
            bad = {
                m
                for m in imported_modules(path)
                if m in ("cellbench.stages", "cellbench.cli") or m.startswith("cellbench.execution")
            }
            if bad:
                offenders.append((path.name, bad))
    assert offenders == []


def test_only_config_reads_yaml():
    readers = [p.name for p in PACKAGE.rglob("*.py") if "yaml" in imported_modules(p)]
    assert readers == ["yaml_file.py"]


def test_every_unit_has_a_layer():
    assert sorted(set(cellbench_graph()) - set(LAYERS)) == []


def test_no_import_cycle_between_packages():
    assert cycles(cellbench_graph()) == []


def test_imports_point_down_the_layers():
    graph = cellbench_graph()
    assert upward_imports(graph, LAYERS) == []
    assert graph["jobs"] >= {"execution"}  # the graph sees the scripts and nested imports
    assert "align" in graph["ground_truth"]  # an import inside a function


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_cycle_and_an_upward_import_are_caught(tmp_path):
    fake = write_package(
        tmp_path / "fake",
        {
            "__init__.py": "",
            "low/__init__.py": "",
            "low/x.py": "def f():\n    from fake.high import y\n",  # inside a function
            "high/__init__.py": "from .y import g\n",  # relative
            "high/y.py": "import fake.low.x\n\ndef g():\n    pass\n",
            "base.py": "from fake import low\n",
            "top.py": "from . import base\n",
        },
    )
    graph = import_graph(fake)
    assert graph == {"low": {"high"}, "high": {"low"}, "base": {"low"}, "top": {"base"}}
    assert cycles(graph) == [{"low", "high"}]
    assert upward_imports(graph, ["top", "high", "low", "base"]) == [
        ("base", "low"),
        ("low", "high"),
    ]


def test_an_acyclic_fake_package_passes(tmp_path):
    fake = write_package(
        tmp_path / "fake",
        {"__init__.py": "", "a.py": "from fake import b\n", "b.py": "import os\n"},
    )
    graph = import_graph(fake)
    assert graph == {"a": {"b"}, "b": set()}
    assert cycles(graph) == [] and upward_imports(graph, ["a", "b"]) == []
