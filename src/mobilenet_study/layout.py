"""Where every stage's outputs go, relative to the repository root: the one owner of the
output layout. Stages, the report and ``make results`` read their paths here; dvc.yaml
declares the same paths (tests/test_layout.py checks that the two agree).

Nothing here imports the rest of the package, so that a stage reading another stage's
outputs depends on this file alone, not on the code that wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Stage `download`.
DOWNLOADS = Path("data/downloads")  # an archive fetched from a URL (not a DVC output)
PREPARED = Path("data/prepared")
DATA_METRICS = Path("metrics/data.json")
DATA_PLOTS = Path("plots/data")

# Stage `residual`.
RESIDUAL_METRICS = Path("metrics/residual.json")
RESIDUAL_PLOTS = Path("plots/residual")

# Stage `cost`.
COST_PLOTS = Path("plots/cost")
COST_TABLE = COST_PLOTS / "cost.csv"
SCALING_TABLE = COST_PLOTS / "scaling.csv"

# Stages `train`, `train_twin` and `train_reference`: one folder or file per run
# (:class:`RunPaths`).
MODELS = Path("models")
TRAIN_METRICS = Path("metrics/train")
TRAIN_CURVES = Path("plots/train")
PREDICTIONS = Path("plots/predictions")
CHECKPOINTS = Path("checkpoints")  # outside DVC's outputs: a rerun may resume from them

# Stage `deploy`: one folder per run (:class:`DeployedPaths`).
DEPLOYED = Path("deployed")

# Stage `aggregate`.
STUDY_METRICS = Path("metrics/study.json")
STUDY_PLOTS = Path("plots/study")
STUDY_TABLE = STUDY_PLOTS / "study.csv"
FLOORS_TABLE = STUDY_PLOTS / "floors.csv"
STUDY_REPORT = Path("reports/study.md")

# Stage `gradcam`: one figure per run.
GRADCAM_PLOTS = Path("plots/gradcam")

# The theory stages.
THEORY_INIT_METRICS = Path("metrics/theory/init.json")
THEORY_INIT_PLOTS = Path("plots/theory/init")
THEORY_DEGRADATION_METRICS = Path("metrics/theory/degradation.json")
THEORY_DEGRADATION_PLOTS = Path("plots/theory/degradation")
THEORY_GRADCAM_METRICS = Path("metrics/theory/gradcam.json")
THEORY_GRADCAM_PLOTS = Path("plots/theory/gradcam")
THEORY_PDF = Path("reports/theory.pdf")

# Outside the pipeline: the profiles' record of attempts, and `make results`' copies.
RUN_LOGS = Path("logs")
RESULTS = Path("results")

# The figures `make results` copies beside a published report (the folders it links into).
FIGURE_DIRS = (STUDY_PLOTS, COST_PLOTS, GRADCAM_PLOTS, RESIDUAL_PLOTS, DATA_PLOTS)


@dataclass(frozen=True)
class RunPaths:
    """Where one training run's outputs go.

    The checkpoint lives outside DVC's outputs, so that a rerun of the stage (which deletes
    its outputs first) can still resume from it. The curves folder holds only DVCLive's
    per-epoch TSV files, so that dvc.yaml can plot the whole ``plots/train`` folder.
    """

    model: Path
    metrics: Path
    curves: Path
    predictions: Path
    checkpoint: Path
    progress: Path

    @classmethod
    def for_run(cls, name: str, root: str | Path = ".") -> RunPaths:
        root = Path(root)
        return cls(
            model=root / MODELS / name / "model.pt",
            metrics=root / TRAIN_METRICS / f"{name}.json",
            curves=root / TRAIN_CURVES / name,
            predictions=root / PREDICTIONS / f"{name}.csv",
            checkpoint=root / CHECKPOINTS / name / "last.pt",
            progress=root / CHECKPOINTS / name / "progress.json",
        )


@dataclass(frozen=True)
class DeployedPaths:
    """Where one run's deployment goes, under the deploy stage's folder (``root``)."""

    fp32: Path
    int8: Path
    summary: Path
    predictions: Path

    @classmethod
    def for_run(cls, name: str, root: str | Path = DEPLOYED) -> DeployedPaths:
        folder = Path(root) / name
        return cls(
            fp32=folder / "model.onnx",
            int8=folder / "model.int8.onnx",
            summary=folder / "deploy.json",
            predictions=folder / "int8_predictions.csv",
        )
