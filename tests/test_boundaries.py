"""The package boundaries of the design: the store box and the central side share only `models`, and each
installs (pyproject.toml's extras) and imports only its own side's packages."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "edge_agent": {"server", "demo"},
    "server": {"edge_agent", "demo"},
    "models": {"server", "edge_agent", "demo", "transport", "flwr", "paho", "cv2", "fastapi"},
    "transport": {"server", "edge_agent", "demo", "flwr", "cv2", "fastapi"},
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_inside_their_boundary(package: str) -> None:
    for path in sorted((ROOT / package).rglob("*.py")):
        crossing = imported_roots(path) & FORBIDDEN[package]
        assert not crossing, f"{path.relative_to(ROOT)} imports {sorted(crossing)}"


# --- what each side installs: pyproject's base dependencies plus its extra ---

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SIDES = {"models": [], "transport": [], "edge_agent": ["store"], "server": ["central"], "demo": ["store", "central"]}
OURS = {"models", "transport", "edge_agent", "server", "demo", "benchmarks", "tests"}


def distribution(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extras: list[str]) -> set[str]:
    """The distributions pyproject.toml installs for these extras (with the base dependencies)."""
    requirements = PYPROJECT["dependencies"] + [r for extra in extras for r in PYPROJECT["optional-dependencies"][extra]]
    return {distribution(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in requirements}  # type: ignore[union-attr]


def third_party_imports(package: str) -> set[str]:
    """Top-level modules imported anywhere in the package (function-level imports too), not ours or stdlib."""
    roots: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        roots |= imported_roots(path)
    return roots - OURS - set(sys.stdlib_module_names) - {"__future__"}


@pytest.mark.parametrize("package", sorted(SIDES))
def test_every_package_the_code_imports_is_declared_for_its_side(package: str) -> None:
    """Nothing may arrive only because another package happens to pull it in (as sqlalchemy did through flwr)."""
    owners = packages_distributions()
    missing = {}
    for module in sorted(third_party_imports(package)):
        provided_by = {distribution(d) for d in owners.get(module, [])}
        assert provided_by, f"{package} imports {module}, which no installed distribution provides"
        if not provided_by & declared(SIDES[package]):
            missing[module] = sorted(provided_by)
    assert not missing, f"{package} imports undeclared packages (module: distribution): {missing}"


def test_the_test_suite_declares_what_it_imports() -> None:
    owners = packages_distributions()
    wanted = declared(["store", "central", "test"])
    missing = {m: owners.get(m) for m in third_party_imports("tests") | third_party_imports("benchmarks")
               if not {distribution(d) for d in owners.get(m, [])} & wanted}
    assert not missing, f"imported by tests or benchmarks, not declared: {missing}"


# Our store code and Flower's SuperNode side never import these, though flwr's own requirements install
# several of them on a store box (FastAPI, uvicorn, SQLAlchemy, Starlette); httpx is not here: flwr's logger imports it.
CENTRAL_ONLY = ["fastapi", "uvicorn", "starlette", "sqlalchemy", "psycopg"]
STORE_ONLY = ["cv2", "sqlite_utils", "prometheus_client"]
BLOCKED_IMPORT = """
import importlib, pkgutil, sys
blocked = set(sys.argv[2].split(","))
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is not installed on this side")
sys.meta_path.insert(0, Blocked())
package = importlib.import_module(sys.argv[1])
for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(module.name)
print(sorted(name for name in sys.modules if name.split(".")[0] in blocked))
"""


@pytest.mark.parametrize(("package", "absent"), [("edge_agent", CENTRAL_ONLY), ("server", STORE_ONLY)],
                         ids=["store box without the central packages", "central server without the store packages"])
def test_each_side_imports_every_module_without_the_other_sides_packages(package: str, absent: list[str]) -> None:
    result = subprocess.run([sys.executable, "-c", BLOCKED_IMPORT, package, ",".join(absent)], capture_output=True,
                            text=True, timeout=240, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(("extra", "absent"), [("store", CENTRAL_ONLY), ("central", STORE_ONLY)])
def test_each_extra_leaves_out_the_other_sides_packages(extra: str, absent: list[str]) -> None:
    owners = packages_distributions()
    other = {distribution(d) for module in absent for d in owners.get(module, [])}
    assert other and not other & declared([extra])
