"""README.md and docs/: every relative link resolves (file and heading), and every `make`
target and `python <script>` they tell the reader to run exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import REPO_ROOT

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# Outputs that exist only after a run of the pipeline (results/cpu/ is committed, these not).
RUN_OUTPUTS = ("plots/", "reports/", "metrics/train", "dvc_plots", "models/", "deployed/")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"(?m)^#+ (.+)$", page.read_text())}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        relative = path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else ""
        if not path.exists():
            if not relative.startswith(RUN_OUTPUTS):
                broken.append(target)
            continue
        if anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def makefile_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"(?m)^([\w-]+):", text))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_commands_name_real_targets_and_scripts(page: Path) -> None:
    text = page.read_text()
    targets = makefile_targets()
    # In code: `make x` spans, and lines of code blocks that start with make.
    for target in re.findall(r"(?:`|^[ \t]*)make ([a-z][\w-]*)", text, re.M):
        assert target in targets, f"{page.name}: `make {target}` is not a Makefile target"
    for script in re.findall(r"python (?:-m )?((?:benchmarks|stages)/[\w/]+\.py)", text):
        assert (REPO_ROOT / script).exists(), f"{page.name}: {script} does not exist"
    for module in re.findall(r"python -m (mobilenet_study[\w.]*)", text):
        parts = module.split(".")
        src = REPO_ROOT / "src" / Path(*parts)
        assert src.with_suffix(".py").exists() or (src / "__main__.py").exists(), module


def test_the_readme_is_short() -> None:
    assert len((REPO_ROOT / "README.md").read_bytes()) <= 12 * 1024
