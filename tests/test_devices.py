"""The full profile on a machine without a usable GPU: `make repro` stops before any work with
one line saying what was found and the two ways on; with CUDA, training tunes cuDNN."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from mobilenet_study import commands, devices
from mobilenet_study.grid import GridPoint, Run
from mobilenet_study.params import load_params
from mobilenet_study.profiles import with_overrides
from mobilenet_study.training.recipe import resolve_device

from .conftest import REPO_ROOT


@pytest.fixture
def no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe's timed steps replaced by a made-up rate: 1 ms per image."""
    monkeypatch.setattr(devices, "probe_seconds_per_image", lambda batch_size: 1e-3)


def test_make_repro_without_cuda_stops_before_any_work(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_probe: None,
) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)

    def no_commands(*args: object, **kwargs: object) -> int:
        raise AssertionError("no command may run")

    monkeypatch.setattr(commands, "timed_run", no_commands)
    monkeypatch.setattr(commands, "run_commands", no_commands)
    assert commands.main(["full"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "no CUDA device" in err and "make cpu" in err and "-S train.device=cpu" in err
    assert "33 runs, 40 epochs" in err
    assert not (tmp_path / "logs").exists()  # no attempt recorded: nothing ran
    # Shards of the full profile are refused the same way, naming their command.
    assert commands.main(["shards", "2"]) == 2
    assert "`make shards` trains the full grid" in capsys.readouterr().err


def test_the_estimate_scales_the_probe_by_each_runs_macs(no_probe: None) -> None:
    probe = Run(GridPoint(devices.PROBE_MODEL, devices.PROBE_WIDTH, 1.0), 0)
    assert devices.cpu_hours([probe], 3600, 1e-3) == pytest.approx(1e-3)
    quarter = Run(GridPoint(devices.PROBE_MODEL, devices.PROBE_WIDTH, 0.5), 0)  # 16 px
    assert devices.cpu_hours([quarter], 3600, 1e-3) < devices.cpu_hours([probe], 3600, 1e-3) / 3


def test_a_driver_torch_cannot_use_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    driver = tmp_path / "version"
    driver.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.57.02  Tue Jul 13\n")
    problem = devices.cuda_problem(driver)
    assert "470.57.02" in problem and "too old" in problem and torch.__version__ in problem
    assert "no CUDA device" in devices.cuda_problem(tmp_path / "absent")


def test_asking_for_the_cpu_or_having_cuda_passes(
    monkeypatch: pytest.MonkeyPatch, no_probe: None
) -> None:
    params = load_params(REPO_ROOT / "params.yaml")
    devices.full_profile_check(with_overrides(params, {"train.device": "cpu"}))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    devices.full_profile_check(params)


def test_cuda_training_autotunes_cudnn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    assert resolve_device("auto").type == "cuda"
    assert torch.backends.cudnn.benchmark
