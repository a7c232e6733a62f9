"""A misspelt setting is an error naming the closest known one, in every section a stage reads,
at load and through `dvc exp run -S` on a real pipeline; never a silent run of the defaults."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from mobilenet_study.cost import CostSettings
from mobilenet_study.data.source import DataParams
from mobilenet_study.deploy import DeployParams
from mobilenet_study.gradcam import GradCamParams
from mobilenet_study.grid import Grid
from mobilenet_study.params import SECTIONS, UnknownKeyError, load_params
from mobilenet_study.residual_exercise import ConvGradParams, ResidualParams
from mobilenet_study.theory.config import TheoryParams
from mobilenet_study.training.recipe import TrainParams

from .conftest import REPO_ROOT, PipelineRepo
from .test_train_stage import TINY_GRID, write_image_folder

READERS: dict[str, Callable[[Mapping[str, Any]], object]] = {
    "data": DataParams.from_params,
    "residual": ResidualParams.from_params,
    "conv_grad": ConvGradParams.from_params,
    "grid": Grid.from_params,
    "cost": CostSettings.from_params,
    "train": TrainParams.from_params,
    "checkpoint": TrainParams.from_params,  # checkpoint.minutes, read with the recipe
    "deploy": DeployParams.from_params,
    "gradcam": GradCamParams.from_params,
    "theory": TheoryParams.from_params,
}


@pytest.fixture
def params() -> dict[str, Any]:
    return load_params(REPO_ROOT / "params.yaml")


def test_every_section_has_a_reader_and_the_committed_params_pass(params: dict) -> None:
    assert set(READERS) == set(SECTIONS) == set(params)
    for read in READERS.values():
        read(params)


@pytest.mark.parametrize(
    ("typo", "correct"),
    [
        ("data.sourc", "data.source"),
        ("residual.strides", "residual.stride"),
        ("conv_grad.upstream", "conv_grad.upstream_grad"),
        ("grid.seed", "grid.seeds"),
        ("grid.sweep.width", "grid.sweep.widths"),
        ("grid.reference.model", "grid.reference.models"),
        ("cost.repeat", "cost.repeats"),
        ("checkpoint.minute", "checkpoint.minutes"),
        ("train.epoch", "train.epochs"),
        ("deploy.tolerence", "deploy.tolerance"),
        ("theory.image", "theory.images"),
        ("theory.plain.widht", "theory.plain.widths"),
        ("theory.degradation.depth", "theory.degradation.depths"),
        ("theory.symmetry.step", "theory.symmetry.steps"),
        ("theory.gradcam.runs", "theory.gradcam.run"),
        ("gradcam.run", "gradcam.runs"),
    ],
)
def test_a_misspelt_key_names_the_closest_known_one(params: dict, typo: str, correct: str) -> None:
    broken = copy.deepcopy(params)
    *parents, leaf = typo.split(".")
    node = broken
    for part in parents:
        node = node[part]
    node[leaf] = 1
    with pytest.raises(UnknownKeyError) as caught:
        READERS[parents[0]](broken)
    assert str(caught.value) == (
        f"params.yaml: `{typo}` is not a setting; did you mean `{correct}`?"
    )


def test_a_key_like_nothing_lists_the_known_ones(params: dict) -> None:
    params["cost"]["zzz"] = 1
    with pytest.raises(UnknownKeyError, match=r"`cost\.zzz` is not a setting; the settings of "
                       r"`cost` are: device, threads, batch_size, warmup, repeats\."):  # fmt: skip
        CostSettings.from_params(params)


def test_a_misspelt_section_is_refused_at_load(tmp_path: Path, params: dict) -> None:
    params["trian"] = params.pop("train")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(UnknownKeyError, match=r"`trian` is not a setting; did you mean `train`\?"):
        load_params(path)


@pytest.mark.slow
def test_dvc_exp_run_with_a_misspelt_key_fails_and_says_why(
    pipeline_repo: PipelineRepo, tmp_path: Path
) -> None:
    repo = pipeline_repo
    folder = write_image_folder(tmp_path / "mirror", {"train": 10, "test": 2})
    repo.set_params({**TINY_GRID, "data.source": str(folder), "cost.warmup": 0, "cost.repeats": 3})
    repo.commit("tiny configuration")
    repo.dvc("repro", "cost")

    # DVC itself refuses -S for a key params.yaml does not have ...
    refused = repo.dvc("exp", "run", "cost", "-S", "grid.sweep.width=[0.5]", check=False)
    assert refused.returncode != 0
    assert "Key 'width' is not in struct" in refused.stdout + refused.stderr
    # ... and adds it with `+`, which the stage that reads the section refuses, by name.
    added = repo.dvc("exp", "run", "cost", "-S", "+grid.sweep.width=[0.5]", check=False)
    assert added.returncode != 0
    output = added.stdout + added.stderr
    assert "`grid.sweep.width` is not a setting; did you mean `grid.sweep.widths`?" in output
    assert "Traceback" not in output
    repo.run("git", "checkout", "params.yaml")

    # A typo written into params.yaml: exit code 2 from the stage, nothing written.
    repo.set_params({"train.epoch": 1})
    before = sorted(p.name for p in repo.path.rglob("*") if ".git" not in p.parts)
    stage = repo.run("python", "stages/train.py", "mobilenet_v1", "0.25", "0.5", "0", check=False)
    assert stage.returncode == 2
    assert "`train.epoch` is not a setting; did you mean `train.epochs`?" in stage.stderr
    assert sorted(p.name for p in repo.path.rglob("*") if ".git" not in p.parts) == before
