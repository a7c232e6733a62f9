"""reports/theory.pdf: the theory answers, compiled by Typst (the `typst` package, offline).

The source, docs/theory.typ, holds the prose; every number in it is read from a stage's JSON
(the residual metrics, the theory stages' ``plots/theory/<stage>/summary.json``, and one
committed benchmark measurement) when the document is compiled (Typst's ``json()``), and
every figure is a stage's PNG. Paths in the source are absolute from the repository root,
which is Typst's root here.
"""

from __future__ import annotations

from pathlib import Path

import typst

from mobilenet_study.files import atomic_path
from mobilenet_study.layout import (
    RESIDUAL_METRICS,
    THEORY_DEGRADATION_PLOTS,
    THEORY_GRADCAM_PLOTS,
    THEORY_INIT_PLOTS,
    THEORY_PDF,
)
from mobilenet_study.params import StudyError

SOURCE = Path("docs/theory.typ")
# What the document reads (dvc.yaml lists the same files as the stage's dependencies).
INPUTS = (
    RESIDUAL_METRICS,
    THEORY_INIT_PLOTS / "summary.json",
    THEORY_DEGRADATION_PLOTS / "summary.json",
    THEORY_GRADCAM_PLOTS / "summary.json",
    # benchmarks/theory_budget.py's measurement, quoted where its settings are the run's.
    Path("benchmarks/results/theory_budget.json"),
)


def build(source: Path = SOURCE, target: Path = THEORY_PDF, root: Path = Path(".")) -> None:
    """Compile ``source`` to ``target``; a missing input names the stage that writes it."""
    missing = [str(name) for name in INPUTS if not (root / name).exists()]
    if missing:
        raise StudyError(
            f"{', '.join(missing)} missing: run the stages that write them first (`dvc repro`)"
        )
    try:
        pdf = typst.compile(str(root / source), root=str(root), timestamp=0)
    except typst.TypstError as err:  # a compile error, with the file and line
        raise StudyError(f"{source} did not compile: {err}") from None
    with atomic_path(root / target) as tmp:
        tmp.write_bytes(pdf)
