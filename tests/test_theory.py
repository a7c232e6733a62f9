"""The theory stages' measurements against independent references: the propagation ratios
against a closed form computed here (scipy), symmetry counting on cases built by hand, the
networks against the paper's parameter counts, and the stages' verdicts on known inputs. The
PDF is built by the real pipeline in tests/test_study_pipeline.py."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import signal

from mobilenet_study.grid import Grid
from mobilenet_study.params import ParamError, load_params
from mobilenet_study.theory import experiments, nets
from mobilenet_study.theory.config import TheoryParams, check_gradcam_run
from mobilenet_study.theory.propagation import measure
from mobilenet_study.theory.symmetry import distinct_filters
from mobilenet_study.theory.training import TrainingImages

from .conftest import REPO_ROOT


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


def closed_form_rms(images: np.ndarray, model: nets.DeepCNN, scheme: str) -> list[float]:
    """E[x²]^(1/2) per conv layer by the moment recursion, written independently: per-pixel
    moments, 3x3 window sums by scipy's 2-D convolution, strides by slicing."""
    moments = (images.astype(np.float64) ** 2).sum(axis=1).mean(axis=0)
    out = []
    for conv in model.convs():
        fan_in = conv.in_channels * 9
        fan_out = conv.out_channels * 9
        variance = 2 / (fan_in + fan_out) if scheme == "xavier" else 2 / fan_in
        summed = signal.convolve2d(moments, np.ones((3, 3)), mode="same")
        stride = conv.stride[0]
        moments = summed[::stride, ::stride] * conv.out_channels * variance / 2
        out.append(math.sqrt(moments.mean() / conv.out_channels))
    return out


@pytest.mark.parametrize("scheme", ["xavier", "he"])
def test_propagation_follows_the_closed_form(scheme: str) -> None:
    """A 10-layer plain ReLU net of 256 channels on 32 random 8x8 images: the measured mean
    square of every layer's output, averaged over 6 draws of the weights, within 15% of the
    closed form (an expectation over the weights: one draw's product of random gains wanders,
    the more the narrower the layers)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(32, 3, 8, 8, generator=generator)
    labels = torch.randint(0, 10, (32,), generator=generator)
    measured = []
    for seed in range(6):
        model = nets.build(10, (256, 256, 256), init=scheme, batch_norm=False, seed=seed)
        found = measure(model, images, labels, scheme)
        measured.append(found.layers["activation_rms"].to_numpy() ** 2)
        # The library's own closed form equals the independent one.
        expected = closed_form_rms(images.numpy(), model, scheme)
        np.testing.assert_allclose(found.layers["expected_rms"], expected, rtol=1e-9)
    np.testing.assert_allclose(np.mean(measured, axis=0), np.square(expected), rtol=0.15)


def test_xavier_halves_the_second_moment_per_layer_away_from_borders() -> None:
    """With 1x1 maps' worth of border effects removed (wide maps, equal fans), the closed form
    gives the textbook 2^(-1/2) per layer in scale."""
    model = nets.build(6, (32, 32, 32), init="xavier", batch_norm=False)
    # Stride-free stretch: layers 2 and 3 are both 32 -> 32 at the same map size.
    images = np.ones((1, 3, 64, 64))
    rms = closed_form_rms(images, model, "xavier")
    interior = rms[2] / rms[1]
    assert interior == pytest.approx(2**-0.5, rel=0.05)


def test_zero_initialisation_zeroes_everything_but_the_classifier_bias() -> None:
    model = nets.build(8, (8, 8, 8), init="zero", batch_norm=False)
    found = measure(model, torch.randn(16, 3, 16, 16), torch.arange(16) % 10, "zero")
    assert (found.layers["activation_rms"] == 0).all()
    assert (found.layers["weight_grad_norm"] == 0).all()
    assert found.classifier_weight_grad_norm == 0
    assert found.classifier_bias_grad_norm > 0


def test_distinct_filters_on_cases_built_by_hand() -> None:
    a, b = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    assert distinct_filters(torch.stack([a, a, a])) == 1
    assert distinct_filters(torch.stack([a, b, a, b])) == 2
    assert distinct_filters(torch.stack([a, b, a + 1e-9])) == 2  # within the tolerance
    assert distinct_filters(torch.zeros(5, 3, 3, 3)) == 1
    assert distinct_filters(torch.arange(6.0).view(6, 1)) == 6


def random_training_images(input_size: int) -> TrainingImages:
    """64 random 16×16 images with random labels, served at ``input_size``."""
    rng = np.random.default_rng(0)
    return TrainingImages.from_arrays(
        rng.integers(0, 256, (64, 16, 16, 3), dtype=np.uint8),
        rng.integers(0, 10, 64),
        (0.5, 0.5, 0.5),
        (0.25, 0.25, 0.25),
        input_size=input_size,
    )


def test_a_symmetric_start_stays_symmetric_in_training() -> None:
    from mobilenet_study.theory.config import Schedule

    data = random_training_images(input_size=16)
    schedule = Schedule(steps=10, batch_size=16, lr=0.05, log_every=5)
    for scheme, expected in (("constant", 1), ("zero", 1)):
        model = nets.build(6, (4, 8, 8), init=scheme, batch_norm=False)
        experiments.sgd_run(model, data, schedule, seed=0)
        assert [distinct_filters(c.weight) for c in model.convs()] == [expected] * 5, scheme
    model = nets.build(6, (4, 8, 8), init="he", batch_norm=False)
    assert [distinct_filters(c.weight) for c in model.convs()] == [
        c.out_channels for c in model.convs()
    ]


def test_training_images_come_at_the_input_size() -> None:

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    images[0] = 200  # a flat image stays flat at any size
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    full = TrainingImages.from_arrays(images, np.zeros(8, dtype=np.int64), mean, std)
    small = TrainingImages.from_arrays(images, np.zeros(8, dtype=np.int64), mean, std, 16)
    index = torch.arange(8)
    assert full.normalised(index).shape == (8, 3, 32, 32)
    x = small.normalised(index)
    assert x.shape == (8, 3, 16, 16)
    torch.testing.assert_close(x[0], torch.full((3, 16, 16), (200 / 255 - 0.5) / 0.25))
    # Shrinking averages: each image's mean is kept (to the border's share), unlike skipping.
    torch.testing.assert_close(
        x.mean((2, 3)), full.normalised(index).mean((2, 3)), atol=0.02, rtol=0
    )


@pytest.mark.parametrize(("depth", "params"), [(20, 0.27e6), (56, 0.85e6), (110, 1.7e6)])
def test_cifar_resnets_have_the_papers_parameter_counts(depth: int, params: float) -> None:
    """He et al. 2016, Table 6: ResNet-20 0.27 M, ResNet-56 0.85 M, ResNet-110 1.7 M; plain
    networks of the same depth have exactly as many (option A shortcuts add none)."""
    resnet = nets.build(depth, (16, 32, 64), batch_norm=True, shortcuts=True)
    plain = nets.build(depth, (16, 32, 64), batch_norm=True)
    count = sum(p.numel() for p in resnet.parameters())
    assert count == pytest.approx(params, rel=0.03)
    assert count == sum(p.numel() for p in plain.parameters())
    assert len(resnet.convs()) + 1 == depth == len(plain.convs()) + 1


def test_orderings_on_made_up_curves() -> None:
    steps = [10, 20]
    curves = pd.DataFrame(
        {
            "network": ["plain-20"] * 2 + ["plain-56"] * 2 + ["resnet-20"] * 2 + ["resnet-56"] * 2,
            "step": steps * 4,
            "train_error": [0.5, 0.4, 0.6, 0.5, 0.5, 0.35, 0.45, 0.3],
        }
    )

    def run(error: float, grad: float) -> dict[str, float]:
        return {"final_train_error": error, "first_layer_grad_norm_final": grad}

    runs = {
        "plain-20": run(0.4, 1.0),
        "plain-56": run(0.5, 0.005),
        "resnet-20": run(0.35, 1.0),
        "resnet-56": run(0.3, 1.0),
    }
    found = experiments.orderings(curves, runs, 20, 56)
    assert found["plain_deeper_worse"] and found["plain_deeper_worse_share"] == 1.0
    assert found["resnet_deeper_better"] and found["resnet_deeper_better_share"] == 1.0
    assert found["resnet_beats_plain_deep"]
    assert found["plain_deep_over_shallow_grad"] == pytest.approx(0.005)
    assert found["plain_deep_gradient_vanished"]


def test_verdict_by_budget_recomputes_the_stage_verdict_on_each_prefix() -> None:
    def log(errors: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {"step": [10 * (i + 1) for i in range(len(errors))], "train_error": errors}
        )

    shallow = log([0.5, 0.4, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3])
    deep = log([0.6, 0.5, 0.2, 0.2, 0.4, 0.2, 0.2, 0.2])
    verdicts = experiments.verdict_by_budget(shallow, deep)
    # The final error of S steps: the mean over the last quarter (at least one) of the points.
    assert verdicts["deep_final_train_error"].tolist() == pytest.approx(
        [0.6, 0.5, 0.2, 0.2, 0.4, 0.2, 0.2, 0.2]
    )
    assert verdicts["deeper_better"].tolist() == [False, False, True, True, False, True, True, True]
    assert experiments.budget_summary(verdicts) == {
        "steps_measured": 80,
        "first_ahead_step": 30,
        "ahead_from_step": 60,
    }
    never = experiments.verdict_by_budget(shallow.assign(train_error=0.1), deep)
    assert experiments.budget_summary(never)["first_ahead_step"] is None
    lost = experiments.verdict_by_budget(shallow, deep.assign(train_error=[0.1] * 7 + [0.9]))
    assert experiments.budget_summary(lost)["ahead_from_step"] is None


def test_a_shorter_run_is_a_prefix_of_a_longer_one() -> None:
    """What benchmarks/theory_budget.py relies on to read every budget off one long run."""
    import dataclasses

    data = random_training_images(input_size=8)
    params = load_params(REPO_ROOT / "params.yaml")
    params["theory"]["degradation"].update(widths=[4, 4, 8], batch_size=8, log_every=2, steps=8)
    config = TheoryParams.from_params(params)
    long = experiments.train_network(config, data, 8, True, config.degradation.schedule)
    short_schedule = dataclasses.replace(config.degradation.schedule, steps=4)
    short = experiments.train_network(config, data, 8, True, short_schedule)
    pd.testing.assert_frame_equal(short, long.iloc[: len(short)])


def test_nan_becomes_null_for_json() -> None:
    assert experiments.finite_or_none({"a": [math.nan, 1.0], "b": math.inf}) == {
        "a": [None, 1.0],
        "b": None,
    }


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("degradation.depths", [20, 21], "6n + 2"),
        ("plain.widths", [16, 32], "three stage widths"),
        ("degradation.widths", [16, 0, 64], "allowed: a whole number in [1, 1024]"),
        ("degradation.widths", [16, 32.5, 64], "a whole number"),
        ("degradation.log_every", 100_000, "must not exceed"),
        ("degradation.lr", -0.05, "allowed: a number in (0.0, 10.0]"),
        ("symmetry.log_every", 1000, "must not exceed"),
        ("init_training.lr", 0, "allowed: a number in (0.0, 10.0]"),
        ("input_size", 30, "a multiple of 4"),
        ("input_size", 4, "allowed"),
        ("input_size", 64, "allowed"),
        ("input_size", "16px", "a whole number"),
    ],
)
def test_bad_values_are_refused_with_the_key(key: str, value: object, message: str) -> None:
    params = load_params(REPO_ROOT / "params.yaml")
    node = params["theory"]
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value
    with pytest.raises(ParamError, match=f"`theory.{key}") as caught:
        TheoryParams.from_params(params)
    assert message in str(caught.value)


def test_the_gradcam_run_must_be_in_the_grid() -> None:
    params = load_params(REPO_ROOT / "params.yaml")
    params["theory"]["gradcam"]["run"] = "mobilenet_v1-9-9-0"
    config = TheoryParams.from_params(params)  # the grid is not this section's business...
    runs = [run.name for run in Grid.from_params(params).runs]
    with pytest.raises(ParamError, match=r"`theory\.gradcam\.run` is 'mobilenet_v1-9-9-0'"):
        check_gradcam_run(config.gradcam, runs)  # ...but the theory_gradcam stage's
