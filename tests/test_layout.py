"""mobilenet_study.layout and dvc.yaml name the same outputs: every path the code writes for a
stage is one dvc.yaml declares for it (or lies inside one), so that DVC tracks, caches and
restores what the stages write."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mobilenet_study import layout

from .conftest import REPO_ROOT

RUN = {"model": "mobilenet_v1", "width": "0.5", "resolution": "0.75", "seed": "0"}
RUN_NAME = "mobilenet_v1-0.5-0.75-0"


def declared_outputs() -> dict[str, set[Path]]:
    """Each stage's outs, metrics and plots, with the matrix's ``${item.*}`` filled in for
    :data:`RUN`."""
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    found: dict[str, set[Path]] = {}
    for name, stage in stages.items():
        paths = set()
        for out in [*stage.get("outs", []), *stage.get("metrics", []), *stage.get("plots", [])]:
            text = out if isinstance(out, str) else next(iter(out))
            for key, value in {**RUN, "run": RUN_NAME}.items():
                text = text.replace(f"${{item.{key}}}", value)
            paths.add(Path(text))
        found[name] = paths
    return found


def inside(path: Path, outputs: set[Path]) -> bool:
    return any(path == out or out in path.parents for out in outputs)


@pytest.mark.parametrize(
    ("stage", "paths"),
    [
        ("download", [layout.PREPARED, layout.DATA_METRICS, layout.DATA_PLOTS]),
        ("residual", [layout.RESIDUAL_METRICS, layout.RESIDUAL_PLOTS]),
        ("cost", [layout.COST_TABLE, layout.SCALING_TABLE]),
        ("deploy", list(vars(layout.DeployedPaths.for_run(RUN_NAME)).values())),
        (
            "aggregate",
            [layout.STUDY_METRICS, layout.STUDY_TABLE, layout.FLOORS_TABLE, layout.STUDY_REPORT],
        ),
        ("theory_init", [layout.THEORY_INIT_METRICS, layout.THEORY_INIT_PLOTS]),
        (
            "theory_degradation",
            [layout.THEORY_DEGRADATION_METRICS, layout.THEORY_DEGRADATION_PLOTS],
        ),
        ("theory_gradcam", [layout.THEORY_GRADCAM_METRICS, layout.THEORY_GRADCAM_PLOTS]),
        ("theory_report", [layout.THEORY_PDF]),
    ],
)
def test_each_stage_declares_what_the_layout_says_it_writes(stage: str, paths: list[Path]) -> None:
    outputs = declared_outputs()[stage]
    assert [p for p in paths if not inside(p, outputs)] == []


def test_a_runs_outputs_are_its_train_stages_and_its_checkpoint_is_not() -> None:
    paths = layout.RunPaths.for_run(RUN_NAME)
    outputs = declared_outputs()["train"]
    assert outputs == {paths.model, paths.metrics, paths.curves, paths.predictions}
    # Outside DVC's outputs, so that a rerun (which deletes them first) can resume.
    assert not inside(paths.checkpoint, set().union(*declared_outputs().values()))


def test_gradcam_figures_land_in_its_folder() -> None:
    (figure,) = declared_outputs()["gradcam"]
    assert figure == layout.GRADCAM_PLOTS / f"{RUN_NAME}.png"


def test_relative_to_a_root() -> None:
    root = Path("/elsewhere")
    assert layout.RunPaths.for_run(RUN_NAME, root).model == root / "models" / RUN_NAME / "model.pt"
    assert layout.DeployedPaths.for_run(RUN_NAME, root).fp32.parent == root / RUN_NAME
