"""Shared fixtures: a temporary git + DVC repository holding a copy of the pipeline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
# What a pipeline run needs: the stage definitions, params, entry points, and the library
# sources that dvc.yaml lists as dependencies (the code that runs is the installed package).
PIPELINE_FILES = (
    "dvc.yaml",
    "params.yaml",
    "stages",
    "src",
    "docs/theory.typ",  # theory_report's source
    "benchmarks/results/theory_budget.json",  # a measurement theory.typ quotes
    ".dvc/config",
    ".dvc/plots",
    ".dvcignore",
)
VENV_BIN = str(Path(sys.executable).parent)


@dataclass
class PipelineRepo:
    path: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", "")}
        result = subprocess.run(
            args, cwd=self.path, env=env, capture_output=True, text=True, timeout=900
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("dvc", *args, check=check)

    def params(self) -> dict[str, Any]:
        return yaml.safe_load((self.path / "params.yaml").read_text())

    def set_params(self, updates: Mapping[str, Any]) -> None:
        """Set dotted keys (``train.epochs``) in the repo's params.yaml."""
        params = self.params()
        for dotted, value in updates.items():
            node = params
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        (self.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def commit(self, message: str = "update") -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "--allow-empty", "-m", message)


def make_pipeline_repo(root: Path) -> PipelineRepo:
    """A fresh git + DVC repository at ``root`` with a copy of this project's pipeline,
    committed."""
    root.mkdir(parents=True)
    for name in PIPELINE_FILES:
        source = REPO_ROOT / name
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    repo = PipelineRepo(root)
    repo.run("git", "init", "-q", "-b", "main")
    repo.run("git", "config", "user.email", "tests@example.invalid")
    repo.run("git", "config", "user.name", "tests")
    repo.dvc("init", "-q", "--force")
    # `dvc init --force` replaced .dvc/: restore the project's config and plot templates.
    shutil.copy2(REPO_ROOT / ".dvc/config", root / ".dvc/config")
    shutil.copytree(REPO_ROOT / ".dvc/plots", root / ".dvc/plots", dirs_exist_ok=True)
    shutil.copy2(REPO_ROOT / ".dvcignore", root / ".dvcignore")
    shutil.copy2(REPO_ROOT / ".gitignore", root / ".gitignore")
    repo.commit("pipeline")
    return repo


@pytest.fixture
def pipeline_repo(tmp_path: Path) -> PipelineRepo:
    """A fresh git + DVC repository with a copy of this project's pipeline, committed."""
    return make_pipeline_repo(tmp_path / "repo")
