"""The package's layers hold: the import contracts of pyproject.toml (import-linter), and
no import cycle anywhere in the package, function-level imports included."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import grimp

from tests.conftest import REPO


def test_the_import_contracts_hold() -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), str(REPO / "pyproject.toml")],
                          cwd=REPO / "shared", capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Contracts: 4 kept, 0 broken." in done.stdout


def test_no_module_imports_itself_through_another() -> None:
    graph = grimp.build_graph("crimecast", exclude_type_checking_imports=True)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != module and graph.chain_exists(imported=module, importer=imported):
                cycles.append(f"{module} -> {imported} -> ... -> {module}")
    assert cycles == []
