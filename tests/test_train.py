"""The training loop on tiny synthetic data: recipe checks, augmentation, determinism, resume."""

from __future__ import annotations

import itertools
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mobilenet_study.data.cifar import Split
from mobilenet_study.data.prepared import (
    PreparedData,
    channel_stats,
    content_sha256,
    save_prepared,
)
from mobilenet_study.data.source import Source
from mobilenet_study.grid import GridPoint, Run
from mobilenet_study.models import build
from mobilenet_study.params import ParamError, StudyError, load_params
from mobilenet_study.training import loop
from mobilenet_study.training.artifacts import run_metrics
from mobilenet_study.training.checkpoint import TrainingState, checkpoint_key, save_checkpoint
from mobilenet_study.training.loop import EpochRecord, TrainResult, _oom_hint, evaluate, train
from mobilenet_study.training.pipeline import (
    DeviceDataset,
    Preprocess,
    augment,
    load_dataset,
    split_validation,
    stratified_subset,
)
from mobilenet_study.training.recipe import (
    TrainParams,
    lr_factor,
    parameter_groups,
    resolve_device,
    seed_everything,
)

from .conftest import REPO_ROOT

TINY = {
    "device": "cpu",
    "epochs": 2,
    "batch_size": 32,
    "lr": 0.05,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5.0e-4,
    "label_smoothing": 0.1,
    "warmup_epochs": 1,
    "crop_padding": 4,
    "train_subset": 0,
    "test_subset": 0,
    "eval_batch_size": 100,
    "compile": False,
    "validation": 0,
    "schedule": "cosine",
    "ema_decay": 0.0,
    "bn_momentum": 0.1,
    "flip": "random",
    "tta": "none",
    "weight_decay_scope": "dense",
    "precision": "fp32",
}
EVERY_STEP = 1e-6  # minutes between checkpoints: one after every step (below params' bound)


def tiny_config(minutes: float = EVERY_STEP, **changes: object) -> TrainParams:
    """The tiny recipe, saving itself every ``minutes`` (set directly: params.yaml's
    ``checkpoint.minutes`` allows no less than a minute)."""
    return replace(
        TrainParams.from_params({"train": {**TINY, **changes}}), checkpoint_minutes=minutes
    )


def synthetic_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose mean colour depends on the label, so a tiny model can learn something."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    base = (labels[:, None, None, None] * 25).astype(np.int64)
    images = np.clip(base + rng.integers(-40, 40, (n, 32, 32, 3)), 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def tiny_run(config: TrainParams, seed: int = 0, **kwargs: object) -> TrainResult:
    device = torch.device("cpu")
    seed_everything(seed)
    train_data = DeviceDataset.from_arrays(*synthetic_split(160, 1), device)
    test_data = DeviceDataset.from_arrays(*synthetic_split(100, 2), device)
    preprocess = Preprocess.create((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 16, device)
    model = build("mobilenet_v1", 0.25)
    return train(
        model, train_data, test_data, preprocess, config, seed=seed, progress=False, **kwargs
    )


def timeless(result: TrainResult) -> list[dict[str, object]]:
    """A run's per-epoch records without their wall times, which never repeat."""
    return [asdict(r) | {"seconds": 0} for r in result.history]


def test_committed_recipe_is_valid() -> None:
    config = TrainParams.from_params(load_params(REPO_ROOT / "params.yaml"))
    assert config.epochs >= 1 and config.nesterov


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("epochs", 0, r"`train.epochs` is 0; allowed: a whole number in \[1, inf\]"),
        ("lr", 0, r"`train.lr` is 0"),
        ("lr", -0.1, r"`train.lr` is -0.1"),
        ("device", "tpu", r"`train.device` is 'tpu'; allowed: auto, cpu, cuda"),
        ("warmup_epochs", 3, r"`train.warmup_epochs` is 3.0; must not exceed train.epochs \(2\)"),
        ("label_smoothing", 1.5, r"`train.label_smoothing`"),
        ("compile", "yes", r"`train.compile` is 'yes'; expected true or false"),
    ],
)
def test_bad_recipe_names_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        tiny_config(**{key: value})


def test_cuda_requested_without_cuda_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ParamError, match=r"`train.device` is 'cuda'; CUDA is not available"):
        resolve_device("cuda")


def test_batch_larger_than_training_set_fails_before_training() -> None:
    config = tiny_config(batch_size=200)
    with pytest.raises(ParamError, match=r"`train.batch_size` is 200.*\(160\)"):
        tiny_run(config)


def test_stratified_subset_is_balanced_seeded_and_exact() -> None:
    labels = np.repeat(np.arange(10), 100)
    subset = stratified_subset(labels, 203, seed=3)
    assert len(subset) == 203 and len(set(subset)) == 203
    counts = np.bincount(labels[subset], minlength=10)
    assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(subset, stratified_subset(labels, 203, seed=3))
    assert not np.array_equal(subset, stratified_subset(labels, 203, seed=4))
    assert len(stratified_subset(labels, 0, seed=3)) == 1000


def test_augment_is_a_padded_crop_maybe_mirrored() -> None:
    """Every augmented image is a 32x32 window of the zero-padded image, maybe mirrored."""
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = augment(images, 4, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    flipped = 0
    for k in range(len(images)):
        matches = [
            (dy, dx, flip)
            for dy in range(9)
            for dx in range(9)
            for flip in (False, True)
            if torch.equal(
                out[k],
                padded[k, :, dy : dy + 32, dx : dx + 32].flip(2)
                if flip
                else padded[k, :, dy : dy + 32, dx : dx + 32],
            )
        ]
        assert matches, f"image {k} is not a crop of its padded original"
        flipped += matches[0][2]
    assert 10 < flipped < 54  # about half are mirrored
    assert out.dtype == torch.uint8


def test_preprocess_resizes_with_antialiasing_and_normalises() -> None:
    """Worked by hand: columns repeating [0, 0, 255, 255], constant down the rows, 32 → 16.

    An antialiased 2× bilinear downscale centres output column i on input 2i + 0.5 with a
    triangle of half-width 2: weights 1, 3, 3, 1 (/8) on inputs 2i-1 .. 2i+2. Even i sees
    255, 0, 0, 255 → 510/8 = 63.75 = 0.25·255; odd i sees 0, 255, 255, 0 → 0.75·255. With mean
    0.5 and std 0.25: (0.25 - 0.5)/0.25 = -1 and (0.75 - 0.5)/0.25 = +1. The edge columns 0
    and 15 lose a tap to the border and are left out.
    """
    prep = Preprocess.create((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 16, torch.device("cpu"))
    row = torch.tensor([0, 0, 255, 255], dtype=torch.uint8).repeat(8)
    images = row.expand(2, 3, 32, 32).clone()
    x = prep(images)
    assert x.shape == (2, 3, 16, 16)
    expected = torch.tensor([1.0 if i % 2 else -1.0 for i in range(1, 15)])
    torch.testing.assert_close(x[..., 1:15], expected.expand(2, 3, 16, 14))


def test_lr_schedule_warms_up_then_decays_to_zero() -> None:
    factors = [lr_factor(s, 100, 10) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(factors[9:]))
    assert factors[-1] < 0.01


def test_weight_decay_skips_batchnorm_and_depthwise() -> None:
    model = build("mobilenet_v1", 0.25)
    decay, no_decay = parameter_groups(model, 1e-4)
    # Counted from mobilenet_v1.py: decay = stem conv + 13 pointwise convs + linear weight;
    # no decay = 13 depthwise convs + 27 BatchNorms × (weight, bias) + linear bias.
    assert len(decay["params"]) == 1 + 13 + 1 == 15
    assert len(no_decay["params"]) == 13 + 27 * 2 + 1 == 68
    decayed = {id(t) for t in decay["params"]}
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert id(module.weight) not in decayed
        if isinstance(module, torch.nn.Conv2d):
            depthwise = module.groups == module.in_channels > 1
            assert (id(module.weight) in decayed) is not depthwise
    assert no_decay["weight_decay"] == 0


def test_training_learns_and_is_deterministic_on_cpu() -> None:
    config = tiny_config(epochs=10, lr=0.2)
    first = tiny_run(config)
    second = tiny_run(config)
    assert timeless(first) == timeless(second)
    # Learning, judged on the training loss: ln 10 = 2.30 is chance. The test accuracy of a
    # model this small, with 5 BatchNorm batches an epoch, swings between CPUs (0.18 to 0.61
    # at epoch 10 across seeds on one machine), and so does the last loss a little (1.20 on
    # an AMD EPYC, 1.53 on an Intel Xeon, the same before and after the loop's rewrite).
    assert first.history[0].train_loss > 2.0
    assert first.history[-1].train_loss < 1.8


def test_compiled_two_thread_training_is_deterministic() -> None:
    """Without ``torch.use_deterministic_algorithms`` (it made compiled CPU steps 2.7x
    slower), a compiled run on two threads still repeats itself exactly."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        config = tiny_config(epochs=1, compile=True)
        first, second = tiny_run(config), tiny_run(config)
    finally:
        torch.set_num_threads(threads)
    assert timeless(first) == timeless(second)


def test_another_seed_trains_another_model() -> None:
    config = tiny_config(epochs=1)
    zero, one = tiny_run(config, seed=0), tiny_run(config, seed=1)
    assert zero.history[-1].train_loss != one.history[-1].train_loss


def test_interrupted_run_resumes_to_identical_metrics(tmp_path: Path) -> None:
    config = tiny_config(epochs=3)
    checkpoint = tmp_path / "last.pt"
    uninterrupted = tiny_run(config)

    def stop_after_first_epoch(record: EpochRecord) -> None:
        if record.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tiny_run(config, checkpoint=checkpoint, checkpoint_key="k", on_epoch=stop_after_first_epoch)
    assert checkpoint.exists()
    seen: list[int] = []
    resumed = tiny_run(
        config, checkpoint=checkpoint, checkpoint_key="k", on_epoch=lambda r: seen.append(r.epoch)
    )
    assert resumed.resumed_from_epoch == 1
    assert seen == [1, 2, 3]  # replayed epoch 1, then trained 2 and 3
    strip = [asdict(r) | {"seconds": 0} for r in resumed.history]
    assert strip == [asdict(r) | {"seconds": 0} for r in uninterrupted.history]


def test_checkpoint_of_other_params_is_ignored(tmp_path: Path) -> None:
    checkpoint = tmp_path / "last.pt"
    config = tiny_config(epochs=1)
    tiny_run(config, checkpoint=checkpoint, checkpoint_key="recipe-a")
    result = tiny_run(config, checkpoint=checkpoint, checkpoint_key="recipe-b")
    assert result.resumed_from_epoch == 0


def test_run_metrics_fields() -> None:
    # 160 training images at batch 48: 3 full batches (the last partial one is dropped).
    config = tiny_config(epochs=2, batch_size=48)
    result = tiny_run(config)
    point = Run(GridPoint("mobilenet_v1", 0.25, 0.5), 0)
    metrics = run_metrics(
        point,
        config,
        result,
        params_count=123,
        macs=456,
        device=torch.device("cpu"),
    )
    for key in (
        "model", "width", "resolution", "input_size", "epochs", "test_accuracy", "test_loss",
        "params", "macs", "train_seconds", "train_images_per_second", "device", "torch_version",
        "seed",
    ):  # fmt: skip
        assert key in metrics
    assert metrics["input_size"] == 16 and metrics["device"] == "cpu"
    assert (metrics["model"], metrics["width"], metrics["resolution"], metrics["seed"]) == (
        "mobilenet_v1",
        0.25,
        0.5,
        0,
    )
    assert metrics["test_accuracy"] == result.history[-1].test_accuracy
    assert metrics["test_loss"] == result.history[-1].test_loss
    assert (metrics["params"], metrics["macs"]) == (123, 456)
    assert metrics["epochs"] == 2
    assert metrics["train_images"] == 3 * 48  # per epoch: steps × batch size


def test_checkpoint_key_covers_recipe_run_seed_data_and_device() -> None:
    config = tiny_config()
    point = Run(GridPoint("mobilenet_v1", 0.25, 0.5), 0)
    cpu = torch.device("cpu")
    key = checkpoint_key(config, point, "data-a", cpu)
    assert key == checkpoint_key(
        tiny_config(), Run(GridPoint("mobilenet_v1", 0.25, 0.5), 0), "data-a", cpu
    )
    others = [
        checkpoint_key(tiny_config(lr=0.07), point, "data-a", cpu),
        checkpoint_key(config, Run(GridPoint("mobilenet_v1", 0.25, 1.0), 0), "data-a", cpu),
        checkpoint_key(config, Run(GridPoint("mobilenet_v1", 0.25, 0.5), 1), "data-a", cpu),
        checkpoint_key(config, point, "data-b", cpu),
        checkpoint_key(config, point, "data-a", torch.device("cuda")),
    ]
    assert key not in others and len(set(others)) == len(others)


def _history(result: TrainResult) -> list[dict[str, object]]:
    return [asdict(r) | {"seconds": 0} for r in result.history]


@pytest.mark.parametrize("damage", ["truncated", "bit flip", "foreign payload", "other params"])
def test_damaged_checkpoint_warns_and_starts_afresh(
    tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Never a crash, never a silently wrong resume: a one-line warning and a fresh start."""
    config = tiny_config(epochs=2)
    checkpoint = tmp_path / "last.pt"

    def stop(record: EpochRecord) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tiny_run(config, checkpoint=checkpoint, checkpoint_key="k", on_epoch=stop)
    raw = bytearray(checkpoint.read_bytes())
    key = "k"
    if damage == "truncated":
        checkpoint.write_bytes(raw[: len(raw) // 2])
    elif damage == "bit flip":
        raw[len(raw) // 2] ^= 0x10
        checkpoint.write_bytes(raw)
    elif damage == "foreign payload":  # intact, right key, but nothing this run can load
        save_checkpoint(checkpoint, "k", _Foreign(), TrainingState([], 0.0, 0.0))
    else:
        key = "other"
    capsys.readouterr()
    result = tiny_run(config, checkpoint=checkpoint, checkpoint_key=key)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "starting this run afresh" in warnings[0], warnings
    assert result.resumed_from_epoch == 0
    assert _history(result) == _history(tiny_run(config))


class _Foreign:
    """Objects whose state no tiny run can load (a model of other shape)."""

    def state_dicts(self) -> dict[str, object]:
        return {
            "model": {"nonsense": torch.zeros(1)}, "optimizer": {}, "schedule": {},
            "generator": torch.Generator().get_state(), "ema": None,
        }  # fmt: skip


def test_mid_epoch_checkpoint_resumes_to_identical_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped right after a checkpoint in the middle of epoch 2 (of 5 steps each), the run
    resumes at that step and ends as the uninterrupted run does, moving average included."""
    config = tiny_config(epochs=3, ema_decay=0.9, flip="alternating", tta="flip")
    checkpoint = tmp_path / "last.pt"
    uninterrupted = tiny_run(config)
    saves = []
    real_save = loop.save_checkpoint

    def save_then_stop(path: Path, key: str, objects: object, state: TrainingState) -> None:
        real_save(path, key, objects, state)
        saves.append(state.cursor)
        if state.cursor is not None and state.cursor.epoch == 1 and state.cursor.step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        tiny_run(config, checkpoint=checkpoint, checkpoint_key="k")
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    resumed = tiny_run(config, checkpoint=checkpoint, checkpoint_key="k")
    assert resumed.resumed_from_epoch == 1
    assert _history(resumed) == _history(uninterrupted)
    torch.testing.assert_close(
        resumed.model.state_dict(), uninterrupted.model.state_dict(), rtol=0, atol=0
    )


def test_checkpoints_follow_wall_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One save per interval of wall time, mid-epoch too, not one per epoch."""
    clock = [0.0]
    monkeypatch.setattr(loop.time, "monotonic", lambda: clock[0])
    saves: list[object] = []
    real_save = loop.save_checkpoint

    def counted(path: Path, key: str, objects: object, state: TrainingState) -> None:
        saves.append(state.cursor and (state.cursor.epoch, state.cursor.step))
        real_save(path, key, objects, state)

    monkeypatch.setattr(loop, "save_checkpoint", counted)
    real_train_steps = loop._train_steps

    def ticking(*args: object, **kwargs: object) -> None:
        on_step = args[-1]

        def tick(cursor: object) -> None:
            clock[0] += 60.0  # each step takes a minute of "wall time"
            on_step(cursor)

        real_train_steps(*args[:-1], tick)

    monkeypatch.setattr(loop, "_train_steps", ticking)
    # 5 steps an epoch, 2 epochs, a checkpoint every 2 minutes: after steps 2 and 4 of epoch 1,
    # step 1 (the 6th minute) and 3 of epoch 2, and none at the end of either epoch (not due).
    tiny_run(tiny_config(minutes=2), checkpoint=tmp_path / "c.pt", checkpoint_key="k")
    assert saves == [(0, 2), (0, 4), (1, 1), (1, 3), (1, 5)]


def test_new_recipe_keys_are_checked() -> None:
    for key, value, allowed in [
        ("validation", -1, r"a whole number in \[0, 25000\]"),
        ("validation", 0.5, r"whole number"),
        ("schedule", "step", r"allowed: cosine, linear"),
        ("ema_decay", 1.0, r"\[0.0, 0.9999\]"),
        ("bn_momentum", 0, r"a number in \(0.0, 1.0\]"),
        ("flip", "always", r"allowed: random, alternating"),
        ("tta", "crops", r"allowed: none, flip"),
        ("weight_decay_scope", "bn", r"allowed: dense, weights, all"),
        ("precision", "fp16", r"allowed: auto, fp32, bf16"),
    ]:
        with pytest.raises(ParamError, match=rf"`train.{key}` is .*{allowed}"):
            tiny_config(**{key: value})
    for minutes in (0, 0.5, -1, 30, "often"):
        with pytest.raises(ParamError, match=r"`checkpoint.minutes` is .*\[1.0, 10.0\]"):
            TrainParams.from_params({"train": TINY, "checkpoint": {"minutes": minutes}})
    assert (
        TrainParams.from_params({"train": TINY, "checkpoint": {"minutes": 1}}).checkpoint_minutes
        == 1
    )


def test_linear_schedule_decays_to_zero_linearly() -> None:
    factors = [lr_factor(s, 110, 10, "linear") for s in range(110)]
    assert factors[9] == pytest.approx(1.0)
    assert factors[60] == pytest.approx(0.5)
    assert factors[-1] == pytest.approx(0.01)


@pytest.mark.parametrize(("scope", "decayed"), [("dense", 15), ("weights", 28), ("all", 83)])
def test_weight_decay_scopes(scope: str, decayed: int) -> None:
    """dense: stem + 13 pointwise + linear; weights: + 13 depthwise; all: every parameter."""
    decay, no_decay = parameter_groups(build("mobilenet_v1", 0.25), 1e-4, scope)
    assert len(decay["params"]) == decayed
    assert len(decay["params"]) + len(no_decay["params"]) == 83


def test_alternating_flips_mirror_each_image_every_other_epoch() -> None:
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    base = torch.rand(64, generator=torch.Generator().manual_seed(0)) < 0.5
    gen = torch.Generator().manual_seed(1)
    even = augment(images, 0, gen, base)
    odd = augment(images, 0, gen, base ^ True)
    for k in range(64):
        assert torch.equal(even[k], images[k].flip(2) if base[k] else images[k])
        assert torch.equal(odd[k], images[k] if base[k] else images[k].flip(2))


def test_moving_average_is_kept_and_evaluated_with_flip_tta() -> None:
    config = tiny_config(epochs=2, ema_decay=0.9, tta="flip")
    result = tiny_run(config)
    raw = tiny_run(tiny_config(epochs=2, tta="flip"))
    # The average differs from the raw weights the same seed trains.
    assert any(
        not torch.equal(a, b)
        for a, b in zip(
            result.model.state_dict().values(), raw.model.state_dict().values(), strict=True
        )
    )
    test_data = DeviceDataset.from_arrays(*synthetic_split(100, 2), torch.device("cpu"))
    preprocess = Preprocess.create((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 16, torch.device("cpu"))
    x = preprocess(test_data.images)
    with torch.no_grad():
        mean_logits = (result.model(x) + result.model(x.flip(3))) / 2
    _, accuracy, predicted = evaluate(result.model, test_data, preprocess, 30, "flip")
    assert torch.equal(predicted, mean_logits.argmax(1))
    assert accuracy == result.history[-1].test_accuracy


def test_validation_split_is_balanced_held_out_and_evaluated(tmp_path: Path) -> None:
    images, labels = synthetic_split(400, 3)
    (train_images, train_labels), (held_images, held_labels) = split_validation(images, labels, 50)
    assert len(held_labels) == 50 and len(train_labels) == 350
    assert np.bincount(held_labels, minlength=10).tolist() == [5] * 10
    rows = {row.tobytes() for row in held_images}
    assert not rows & {row.tobytes() for row in train_images}
    save_prepared_tiny(tmp_path, images, labels)
    run = Run(GridPoint("mobilenet_v1", 0.25, 0.5), 0)
    data = load_dataset(tmp_path, tiny_config(validation=50), run, torch.device("cpu"))
    assert data.evaluated_on == "validation" and len(data.test) == 50 and len(data.train) == 350
    assert load_dataset(tmp_path, tiny_config(), run, torch.device("cpu")).evaluated_on == "test"


def save_prepared_tiny(directory: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """A prepared folder as the download stage writes it, from synthetic arrays."""
    splits = {
        "train": Split(images, labels),
        "test": Split(*synthetic_split(100, 4)),
    }
    mean, std = channel_stats(images)
    source = Source(str(directory), "image folder", directory)
    data = PreparedData(source, "png", splits, mean, std, content_sha256(splits))
    save_prepared(data, directory)


def test_cuda_out_of_memory_suggests_a_smaller_batch() -> None:
    expected = r"train.batch_size=256.*lower train.batch_size"
    with pytest.raises(StudyError, match=expected), _oom_hint(256):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
