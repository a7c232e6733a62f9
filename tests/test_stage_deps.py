"""Every stage depends on every project file its command runs: the stage script and, walking
its imports transitively (function-local ones too), every module of src/mobilenet_study it
imports, with the packages' __init__ files. A file missing from a stage's `deps` would let
`dvc repro` call the stage up to date while its outputs are stale."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from .conftest import REPO_ROOT

SRC = REPO_ROOT / "src"
PACKAGE = "mobilenet_study"


def module_file(name: str) -> Path | None:
    """The file of module ``name`` under src/, or None if it is not one of ours."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Names of the modules ``path`` imports (anywhere in the file, but for type checking
    only), including a package's submodules named in ``from package import submodule``."""
    tree = ast.parse(path.read_text())
    # Imports under `if TYPE_CHECKING:` never run; drop those blocks before walking.
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    here = module_name(path) if path.is_relative_to(SRC) else ""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x
                package = here.split(".")
                package = package[: len(package) - node.level + (path.name == "__init__.py")]
                base = ".".join([*package, base] if base else package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def project_files(script: Path) -> set[Path]:
    """``script`` and every file of src/mobilenet_study it runs, transitively: importing
    ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` too."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                found = module_file(".".join(parts[:i]))
                if found is not None and found not in seen:
                    todo.append(found)
    return seen


def stages() -> dict[str, dict]:
    return yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]


def covered(path: Path, deps: list[str]) -> bool:
    relative = path.relative_to(REPO_ROOT)
    for dep in deps:
        dep_path = Path(dep)
        if relative == dep_path or dep_path in relative.parents:
            return True
    return False


@pytest.mark.parametrize("stage", sorted(stages()))
def test_every_imported_project_file_is_a_dependency(stage: str) -> None:
    definition = stages()[stage]
    script = re.search(r"python (stages/\S+\.py)", definition["cmd"])
    assert script, f"{stage}: its command runs no stage script: {definition['cmd']}"
    deps = [d for d in definition["deps"] if "${" not in d or d.startswith("models/")]
    missing = sorted(
        str(path.relative_to(REPO_ROOT))
        for path in project_files(REPO_ROOT / script.group(1))
        if not covered(path, deps)
    )
    assert not missing, f"stage {stage!r} imports {missing} but does not depend on them"


def test_the_walk_finds_function_local_and_package_imports(tmp_path: Path) -> None:
    script = tmp_path / "stage.py"
    script.write_text(
        "def main():\n"
        "    from mobilenet_study.data.prepared import load_split\n"
        "from mobilenet_study import grid\n"
    )
    files = {str(p.relative_to(REPO_ROOT)) for p in project_files(script) if p != script}
    assert "src/mobilenet_study/data/prepared.py" in files
    assert "src/mobilenet_study/data/__init__.py" in files
    assert "src/mobilenet_study/__init__.py" in files
    assert "src/mobilenet_study/grid.py" in files
    assert "src/mobilenet_study/models/__init__.py" in files  # grid imports models
    # ...but not the modules of data/ that prepared.py does not import.
    assert "src/mobilenet_study/data/download.py" not in files
