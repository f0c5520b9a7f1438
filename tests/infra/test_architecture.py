"""The tree's layers hold: the import contracts of pyproject.toml (import-linter: the package's
layers, the functions on the package alone, the local stack's rooms, the benchmarks), and no
import cycle anywhere in the tree, function-level imports included."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys
import tomllib

import grimp

from tests.conftest import REPO

CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]


def test_the_import_contracts_hold() -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "pyproject.toml"],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"Contracts: {len(CONFIG['contracts'])} kept, 0 broken." in done.stdout


def test_the_contracts_cover_the_whole_tree() -> None:
    """Every folder of the repository that holds Python (shared/: its package) is a root of the contracts."""
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    roots = {path.split("/")[1] if path.startswith("shared/") else path.split("/")[0] for path in files}
    assert set(CONFIG["root_packages"]) == roots


def test_no_module_imports_itself_through_another() -> None:
    graph = grimp.build_graph(*CONFIG["root_packages"], exclude_type_checking_imports=True)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != module and graph.chain_exists(imported=module, importer=imported):
                cycles.append(f"{module} -> {imported} -> ... -> {module}")
    assert cycles == []
