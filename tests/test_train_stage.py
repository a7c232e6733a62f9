"""The training stages through DVC on a tiny configuration: outputs, bad input, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mobilenet_study.data.cifar import CLASSES

from .conftest import PipelineRepo, make_pipeline_repo

# A few hundred images, one epoch, the smallest models: seconds per run on a CPU.
TINY_GRID = {
    "grid.sweep.models": ["mobilenet_v1", "baseline"],
    "grid.sweep.widths": [0.25],
    "grid.sweep.resolutions": [0.5],
    "grid.reference.models": ["mobilenet_v2"],
    "grid.reference.widths": [0.125],
    "grid.reference.resolutions": [0.5],
    "grid.seeds": [0],
    "train.device": "cpu",
    "train.epochs": 1,
    "train.batch_size": 50,
    "train.train_subset": 200,
    "train.test_subset": 100,
    "train.eval_batch_size": 100,
    "train.warmup_epochs": 0,
    "train.compile": False,  # compiling takes longer than these runs train
    # Deployment timed briefly: the tests check the outputs, not the numbers.
    "deploy.calibration_images": 20,
    "deploy.batch_sizes": [1, 4],
    "deploy.warmup": 0,
    "deploy.repeats": 3,
    # The theory stages in a few seconds (a full `dvc repro` runs them too).
    "theory.images": 16,
    "theory.draws": 2,
    "theory.plain.depth": 6,
    "theory.plain.widths": [4, 4, 8],
    "theory.symmetry.steps": 4,
    "theory.symmetry.batch_size": 8,
    "theory.symmetry.log_every": 2,
    "theory.init_training.steps": 4,
    "theory.init_training.batch_size": 8,
    "theory.init_training.log_every": 2,
    "theory.degradation.depths": [8, 14],
    "theory.degradation.widths": [4, 4, 8],
    "theory.degradation.steps": 4,
    "theory.degradation.batch_size": 8,
    "theory.degradation.log_every": 2,
    "theory.gradcam.run": "mobilenet_v1-0.25-0.5-0",
    "theory.gradcam.images_per_class": 1,
}


def write_image_folder(root: Path, per_class: dict[str, int]) -> Path:
    """A tiny CIFAR-10 layout of random 32x32 PNGs, images per class per split as given."""
    rng = np.random.default_rng(0)
    for split, count in per_class.items():
        for cls in CLASSES:
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture
def tiny_repo(pipeline_repo: PipelineRepo, tmp_path: Path) -> PipelineRepo:
    folder = write_image_folder(tmp_path / "mirror", {"train": 30, "test": 12})
    pipeline_repo.set_params({**TINY_GRID, "data.source": str(folder)})
    pipeline_repo.commit("tiny configuration")
    return pipeline_repo


@pytest.fixture(scope="module")
def prepared_repo(tmp_path_factory: pytest.TempPathFactory) -> PipelineRepo:
    """The tiny configuration with its data prepared, once for the module's bad-input cases."""
    root = tmp_path_factory.mktemp("prepared")
    folder = write_image_folder(root / "mirror", {"train": 30, "test": 12})
    repo = make_pipeline_repo(root / "repo")
    repo.set_params({**TINY_GRID, "data.source": str(folder)})
    repo.commit("tiny configuration")
    repo.dvc("repro", "download")
    return repo


@pytest.mark.slow
def test_dvc_repro_trains_every_grid_point(tiny_repo: PipelineRepo) -> None:
    tiny_repo.dvc("repro", "train", "train_reference")
    runs = ["mobilenet_v1-0.25-0.5-0", "baseline-0.25-0.5-0", "mobilenet_v2-0.125-0.5-0"]
    for run in runs:
        metrics = json.loads((tiny_repo.path / f"metrics/train/{run}.json").read_text())
        assert metrics["epochs"] == 1 and metrics["device"] == "cpu"
        assert metrics["train_images"] == 200 and 0 <= metrics["test_accuracy"] <= 1
        assert metrics["macs"] > 0 and metrics["params"] > 0
        assert (tiny_repo.path / f"models/{run}/model.pt").stat().st_size > 10_000
        curves = tiny_repo.path / f"plots/train/{run}"
        curve = curves / "plots/metrics/test_accuracy.tsv"
        assert curve.read_text().splitlines()[0].split("\t") == ["step", "test_accuracy"]
        # Only plot data there: dvc.yaml plots the whole plots/train folder.
        assert {f.suffix for f in curves.rglob("*") if f.is_file()} == {".tsv"}
        assert not list((tiny_repo.path / "checkpoints").glob(f"{run}/*.pt"))
        predictions = (tiny_repo.path / f"plots/predictions/{run}.csv").read_text()
        lines = predictions.splitlines()
        assert lines[0] == "actual,predicted" and len(lines) == 1 + 100
        assert {line.split(",")[0] for line in lines[1:]} == set(CLASSES)
    assert (
        json.loads((tiny_repo.path / f"metrics/train/{runs[0]}.json").read_text())["input_size"]
        == 16
    )
    status = tiny_repo.run("python", "-m", "mobilenet_study.status").stdout
    assert status.count("done ") == 3 and "3/3 runs done" in status, status

    # A second seed trains only its own runs (dropping the baseline from the sweep runs nothing).
    tiny_repo.set_params({"grid.seeds": [0, 1], "grid.sweep.models": ["mobilenet_v1"]})
    status = tiny_repo.run("python", "-m", "mobilenet_study.status").stdout
    assert "to do    train@mobilenet_v1-0.25-0.5-1" in status and "2/4 runs done" in status
    again = tiny_repo.dvc("repro", "train", "train_reference").stdout
    assert again.count("Running stage") == 2
    assert "Running stage 'train@mobilenet_v1-0.25-0.5-1'" in again
    assert "Running stage 'train_reference@mobilenet_v2-0.125-0.5-1'" in again
    metrics = tiny_repo.path / "metrics/train"
    seeds = [json.loads((metrics / f"mobilenet_v1-0.25-0.5-{s}.json").read_text()) for s in (0, 1)]
    assert [m["seed"] for m in seeds] == [0, 1]
    assert seeds[0]["train_loss"] != seeds[1]["train_loss"]
    # ... on the same test images, in the same order: their predictions pair image by image.
    predictions = tiny_repo.path / "plots/predictions"
    actual = [
        [line.split(",")[0] for line in (predictions / f"mobilenet_v1-0.25-0.5-{s}.csv").open()]
        for s in (0, 1)
    ]
    assert actual[0] == actual[1] and len(actual[0]) == 1 + 100


@pytest.mark.slow
@pytest.mark.parametrize(
    ("updates", "message"),
    [
        ({"grid.sweep.models": ["mobilenet_v9"]}, "`grid.sweep.models[0]` is 'mobilenet_v9'"),
        ({"grid.sweep.widths": [0.0]}, "`grid.sweep.widths[0]` is 0.0"),
        ({"grid.sweep.resolutions": [0.2]}, "`grid.sweep.resolutions[0]` is 0.2"),
        ({"train.batch_size": 500}, "`train.batch_size` is 500"),
        pytest.param(
            {"train.device": "cuda"},
            "`train.device` is 'cuda'",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present"),
        ),
        ({"train.epochs": 0}, "`train.epochs` is 0"),
        ({"train.lr": 0.0}, "`train.lr` is 0.0"),
        ({"train.validation": -5}, "`train.validation` is -5"),
        ({"train.ema_decay": 1.5}, "`train.ema_decay` is 1.5"),
        ({"train.schedule": "step"}, "`train.schedule` is 'step'; allowed: cosine, linear"),
        ({"train.tta": "crops"}, "`train.tta` is 'crops'; allowed: none, flip"),
        ({"checkpoint.minutes": 0}, "`checkpoint.minutes` is 0"),
    ],
)
def test_bad_input_fails_before_training(
    prepared_repo: PipelineRepo, updates: dict, message: str
) -> None:
    committed = (prepared_repo.path / "params.yaml").read_text()
    prepared_repo.set_params(updates)
    try:
        result = prepared_repo.run(
            "python", "stages/train.py", "mobilenet_v1", "0.25", "0.5", "0", check=False
        )
    finally:
        (prepared_repo.path / "params.yaml").write_text(committed)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (prepared_repo.path / "metrics/train").exists()
    assert not (prepared_repo.path / "models").exists()


@pytest.mark.slow
def test_missing_prepared_data_names_the_stage(tiny_repo: PipelineRepo) -> None:
    result = tiny_repo.run(
        "python", "stages/train.py", "mobilenet_v1", "0.25", "0.5", "0", check=False
    )
    assert result.returncode == 2
    assert "dvc repro download" in result.stderr


@pytest.mark.slow
def test_deploying_an_untrained_run_names_it(tiny_repo: PipelineRepo) -> None:
    tiny_repo.dvc("repro", "download", "train@baseline-0.25-0.5-0")
    result = tiny_repo.run("python", "stages/deploy.py", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        "mobilenet_v1-0.25-0.5-0 is not trained: run `dvc repro train@mobilenet_v1-0.25-0.5-0`"
        in result.stderr
    )
    assert not (tiny_repo.path / "deployed").exists()
