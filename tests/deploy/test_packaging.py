"""What gets installed: the service package and its migrations, not the source tree's tools.

``bench/`` runs from a source checkout (``./dev run python -m bench``) and is left out of the wheel,
so nothing the service runs may import it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_the_service_only() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["service"]


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_service_never_imports_bench() -> None:
    modules = sorted((ROOT / "service").rglob("*.py"))
    assert len(modules) > 30
    for path in modules:
        bench = {n for n in _imported(path) if n == "bench" or n.startswith("bench.")}
        assert not bench, f"{path.relative_to(ROOT)} imports {bench}"


def test_bench_runs_from_the_source_checkout() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "usage: python -m bench" in done.stdout
