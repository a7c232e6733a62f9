"""The models: topology tables, shapes at every ρ, residuals, init, the rounding rule, errors."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from mobilenet_study.grid import Grid
from mobilenet_study.models import (
    MODEL_NAMES,
    ConvBNAct,
    DepthwiseSeparable,
    InvertedResidual,
    ModelError,
    architecture,
    build,
    layer_specs,
    mobilenet_v1,
    mobilenet_v2,
    scale_channels,
)
from mobilenet_study.models.spec import BlockSpec, ConvSpec
from mobilenet_study.params import StudyError, load_params

from .conftest import REPO_ROOT


@pytest.fixture(scope="module")
def grid() -> Grid:
    return Grid.from_params(load_params(REPO_ROOT / "params.yaml"))


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    # The test machine's cores are shared: one intra-op thread avoids oversubscription stalls.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _store(store: dict, key: object) -> Callable[..., None]:
    """A forward hook that records (input side, output tensor) and leaves the output alone."""

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        store[key] = (inputs[0], output)

    return hook


def _convs(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


# --- Shapes and the uniform "features → GAP → linear" structure ----------------------------


def test_every_grid_point_gives_logits_at_its_input_size(grid: Grid) -> None:
    torch.manual_seed(0)
    for point in grid.points:
        model = build(point.model, point.width).eval()
        x = torch.randn(2, 3, point.input_size, point.input_size)
        with torch.no_grad():
            features = model.features(x)
            logits = model(x)
        assert logits.shape == (2, 10), point.name
        # The last feature map's side is what the layer specs predict for this input size.
        last = layer_specs(point.model, point.width, input_size=point.input_size)[-2]
        assert features.shape[1:] == (last.out_channels, last.out_size, last.out_size)


@pytest.mark.parametrize(
    ("name", "side"), [("mobilenet_v1", 2), ("baseline", 2), ("mobilenet_v2", 4)]
)
def test_cifar_total_stride(name: str, side: int) -> None:
    # V1/baseline: stride-1 stem, total stride 16; V2: stem and first s2 stage at stride 1: 8.
    with torch.no_grad():
        out = build(name).eval().features(torch.zeros(1, 3, 32, 32))
    assert out.shape[-2:] == (side, side)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_structure_is_last_feature_block_then_gap_then_linear(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, 0.5).eval()
    assert isinstance(model.features, nn.Sequential)
    assert isinstance(model.pool, nn.AdaptiveAvgPool2d)
    assert isinstance(model.classifier[-1], nn.Linear)
    captured: dict = {}
    model.features[-1].register_forward_hook(_store(captured, "last"))
    x = torch.randn(3, 3, 24, 24)
    with torch.no_grad():
        logits = model(x)
        by_hand = model.classifier[-1](captured["last"][1].mean(dim=(2, 3)))
    torch.testing.assert_close(logits, by_hand)


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("variant", ["cifar", "imagenet"])
def test_layer_specs_describe_the_built_module(name: str, variant: str) -> None:
    """Builder and analytic cost read the same specs: every conv is listed, with its shape and
    feature-map sizes, and nothing else carries weights."""
    width, size = 0.75, 64
    model = build(name, width, num_classes=7, variant=variant).eval()
    specs = layer_specs(name, width, num_classes=7, variant=variant, input_size=size)
    modules = dict(model.named_modules())
    seen: dict = {}
    hooks = [
        modules[f"{s.name}.conv"].register_forward_hook(_store(seen, s.name)) for s in specs[:-1]
    ]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    for spec in specs[:-1]:
        conv = modules[f"{spec.name}.conv"]
        assert (conv.in_channels, conv.out_channels) == (spec.in_channels, spec.out_channels)
        assert conv.kernel_size == (spec.kernel, spec.kernel)
        assert conv.stride == (spec.stride, spec.stride)
        assert conv.groups == (spec.in_channels if spec.kind == "depthwise" else 1)
        x, y = seen[spec.name]
        assert (x.shape[-1], y.shape[-1]) == (spec.in_size, spec.out_size)
    linear = modules[specs[-1].name]
    assert isinstance(linear, nn.Linear)
    assert (linear.in_features, linear.out_features) == (specs[-1].in_channels, 7)
    assert len(_convs(model)) == len(specs) - 1


# --- The topology tables ------------------------------------------------------------------


def test_mobilenet_v1_follows_table_1() -> None:
    arch = architecture("mobilenet_v1", variant="imagenet")
    stem, *body = arch.blocks
    assert (stem.out_channels, stem.stride) == (32, 2)
    assert [(b.out_channels, b.stride) for b in body] == [
        (64, 1),
        (128, 2),
        (128, 1),
        (256, 2),
        (256, 1),
        (512, 2),
        *[(512, 1)] * 5,
        (1024, 2),
        (1024, 1),  # Table 1's "s2" here is a typo: the paper's 7×7 average pool needs s1
    ]
    assert all(b.kind == "separable" for b in body)
    assert architecture("mobilenet_v1", variant="cifar").blocks[0].stride == 1


def test_baseline_is_v1_with_standard_convs() -> None:
    v1 = architecture("mobilenet_v1", 0.5)
    base = architecture("baseline", 0.5)
    assert len(v1.blocks) == len(base.blocks) == 14
    for sep, conv in zip(v1.blocks, base.blocks, strict=True):
        assert (sep.in_channels, sep.out_channels, sep.stride) == (
            conv.in_channels,
            conv.out_channels,
            conv.stride,
        )
    for block in base.blocks[1:]:
        (spec,) = block.convs
        assert (spec.kernel, spec.groups, spec.activation) == (3, 1, "relu")
    model = build("baseline")
    assert not any(isinstance(m, DepthwiseSeparable) for m in model.modules())
    assert all(conv.groups == 1 for _, conv in _convs(model))


def test_mobilenet_v2_matches_torchvision_conv_by_conv() -> None:
    """torchvision's MobileNetV2 as an independent reference: same convs in the same order."""
    import torchvision

    for width in (1.0, 0.5, 1.4):
        ours = build("mobilenet_v2", width, num_classes=1000, variant="imagenet")
        theirs = torchvision.models.mobilenet_v2(weights=None, width_mult=width)
        shapes = [(c.weight.shape, c.stride, c.groups) for _, c in _convs(ours)]
        assert shapes == [(c.weight.shape, c.stride, c.groups) for _, c in _convs(theirs)]


def test_mobilenet_v2_head_is_never_below_1280() -> None:
    for width, head in ((0.25, 1280), (0.5, 1280), (1.0, 1280), (1.4, 1792)):
        assert architecture("mobilenet_v2", width).num_features == head


def test_mobilenet_v2_cifar_runs_first_stride_2_stage_at_stride_1() -> None:
    cifar = architecture("mobilenet_v2", variant="cifar").blocks
    imagenet = architecture("mobilenet_v2", variant="imagenet").blocks
    strides = [b.stride for b in imagenet]
    assert strides[0] == 2 and strides[2] == 2  # stem, first block of the 24-channel row
    assert [b.stride for b in cifar] == [1, 1, 1, *strides[3:]]
    assert math.prod(strides) == 32
    assert math.prod(b.stride for b in cifar) == 8


# --- Residuals and the linear bottleneck --------------------------------------------------


@pytest.mark.parametrize("variant", ["cifar", "imagenet"])
def test_residual_only_with_stride_1_and_equal_channels(variant: str) -> None:
    model = build("mobilenet_v2", variant=variant)
    blocks = [m for m in model.features if isinstance(m, InvertedResidual)]
    assert len(blocks) == 17
    for block, spec in zip(blocks, model.arch.blocks[1:-1], strict=True):
        allowed = spec.stride == 1 and spec.in_channels == spec.out_channels
        assert block.use_residual == allowed
    # Table 2: the 2nd+ repeat of each row with n > 1 (1 + 2 + 3 + 2 + 2 = 10 blocks).
    assert sum(b.use_residual for b in blocks) == 10
    for name in ("mobilenet_v1", "baseline"):
        assert not any(isinstance(m, InvertedResidual) for m in build(name).modules())


def test_residual_adds_the_input_and_nothing_else() -> None:
    """With the projection's BN zeroed, a residual block is the identity, the others give 0."""
    torch.manual_seed(0)
    model = build("mobilenet_v2", 0.5).eval()
    for block in model.features:
        if isinstance(block, InvertedResidual):
            nn.init.zeros_(block.project.bn.weight)
            nn.init.zeros_(block.project.bn.bias)
            x = torch.randn(2, next(block.children()).conv.in_channels, 8, 8)
            with torch.no_grad():
                out = block(x)
            expected = x if block.use_residual else torch.zeros_like(out)
            torch.testing.assert_close(out, expected)


def test_projection_is_linear_and_the_rest_relu6() -> None:
    model = build("mobilenet_v2")
    for block in model.features:
        if isinstance(block, InvertedResidual):
            assert not hasattr(block.project, "act")
            assert isinstance(block.dw.act, nn.ReLU6)
            if hasattr(block, "expand"):
                assert isinstance(block.expand.act, nn.ReLU6)
    assert not hasattr(model.features[1], "expand")  # t = 1: no expansion conv


def test_block_spec_refuses_an_impossible_residual() -> None:
    conv = ConvSpec("project", 16, 24, 1, activation=None)
    with pytest.raises(ValueError, match="residual"):
        BlockSpec("inverted_residual", (conv,), residual=True)


# --- Width multiplier rounding ------------------------------------------------------------


def test_scale_channels_examples() -> None:
    assert scale_channels(32, 1.0) == 32
    assert scale_channels(32, 0.25) == 8
    assert scale_channels(1024, 0.3) == 304  # 307.2 → nearest multiple of 8
    assert scale_channels(16, 0.25) == 8  # 4 → never below 8
    assert scale_channels(12, 1.0) == 16  # 12 → halves round up
    assert scale_channels(11, 1.0) == 16  # 8 would lose 27%: add 8 back
    assert scale_channels(1280, 1.4) == 1792


@given(
    channels=st.integers(min_value=1, max_value=4096),
    width=st.floats(min_value=0.01, max_value=4.0, allow_nan=False),
)
def test_scale_channels_rule(channels: int, width: float) -> None:
    exact = channels * width
    out = scale_channels(channels, width)
    assert out % 8 == 0 and out >= 8
    assert out >= 0.9 * exact
    assert out <= max(8, exact + 8)


@pytest.mark.parametrize("width", [0.25, 0.5, 0.75, 1.0])
def test_study_widths_scale_every_table_entry_exactly(width: float) -> None:
    for base in (mobilenet_v1.STEM_CHANNELS, *(c for c, _ in mobilenet_v1.BLOCKS)):
        assert scale_channels(base, width) == base * width
    for _, base, _, _ in mobilenet_v2.BLOCKS:
        if base * width >= 8 and (base * width) % 8 == 0:
            assert scale_channels(base, width) == base * width


# --- Initialisation -----------------------------------------------------------------------


# He normal, fan_out mode, worked by hand at α = 1 (CIFAR): std = gain / √(K²·C_out/groups),
# gain √2 before a ReLU/ReLU6 and 1 for the linear bottleneck. The tolerance is about 5 standard
# errors of a sample std (σ/√(2n)) for the n weights drawn.
@pytest.mark.parametrize(
    ("name", "module", "numel", "std", "rel"),
    [
        # stem 3→32, 3×3: fan_out 9·32 = 288, √(2/288) = 1/12
        ("mobilenet_v1", "features.0.conv", 864, 1 / 12, 0.15),
        # depthwise 32 ch, 3×3, groups 32: fan_out 9·32/32 = 9, √(2/9)
        ("mobilenet_v1", "features.1.dw.conv", 288, 0.4714045, 0.25),
        # pointwise 32→64, 1×1: fan_out 64, √(2/64)
        ("mobilenet_v1", "features.1.pw.conv", 2048, 0.1767767, 0.1),
        # V2's first projection 32→16, 1×1, linear (gain 1): fan_out 16, 1/√16
        ("mobilenet_v2", "features.1.project.conv", 512, 0.25, 0.2),
    ],
)
def test_init_he_normal_fan_out_by_hand(
    name: str, module: str, numel: int, std: float, rel: float
) -> None:
    torch.manual_seed(0)
    w = dict(build(name).named_modules())[module].weight
    assert w.numel() == numel
    assert abs(w.mean().item()) < 5 * std / math.sqrt(numel)
    assert w.std().item() == pytest.approx(std, rel=rel)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_init_bn_identity_small_linear(name: str) -> None:
    torch.manual_seed(0)
    model = build(name)
    units = [m for m in model.modules() if isinstance(m, ConvBNAct)]
    assert len(units) == len(_convs(model))
    for unit in units:
        assert torch.equal(unit.bn.weight, torch.ones_like(unit.bn.weight))
        assert torch.equal(unit.bn.bias, torch.zeros_like(unit.bn.bias))
    linear = model.classifier[-1]
    assert linear.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert torch.equal(linear.bias, torch.zeros_like(linear.bias))


def test_initial_predictions_are_near_uniform() -> None:
    torch.manual_seed(0)
    model = build("mobilenet_v1").eval()
    with torch.no_grad():
        logits = model(torch.randn(8, 3, 32, 32))
    loss = nn.functional.cross_entropy(logits, torch.zeros(8, dtype=torch.long))
    assert loss.item() == pytest.approx(math.log(10), abs=0.1)


# --- Errors -------------------------------------------------------------------------------


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'resnet'.*mobilenet_v1, baseline"):
        build("resnet")
    assert issubclass(ModelError, StudyError)


@pytest.mark.parametrize("width", [0, -0.5, 4.5, float("nan"), float("inf"), "1.0", True, None])
def test_bad_width_is_refused(width: object) -> None:
    with pytest.raises(ModelError, match="width multiplier α"):
        build("mobilenet_v1", width)  # type: ignore[arg-type]


def test_bad_variant_classes_dropout_input_size() -> None:
    with pytest.raises(ModelError, match="unknown variant"):
        build("mobilenet_v2", variant="svhn")
    with pytest.raises(ModelError, match="num_classes"):
        build("baseline", num_classes=0)
    with pytest.raises(ModelError, match="dropout"):
        build("baseline", dropout=1.0)
    with pytest.raises(ValueError, match="input size"):
        layer_specs("mobilenet_v1", input_size=0)


def test_dropout_sits_before_the_linear_layer() -> None:
    model = build("mobilenet_v1", dropout=0.2)
    assert isinstance(model.classifier[0], nn.Dropout) and model.classifier[0].p == 0.2
