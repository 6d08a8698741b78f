"""The one-way dependencies of DESIGN.md, checked on the source."""

import ast
from pathlib import Path

from tests.helpers import REPO

PACKAGE = REPO / "cellbench"


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
