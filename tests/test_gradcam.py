"""Grad-CAM against its definition and against CAM, its guarantees to the caller, the stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from mobilenet_study import gradcam as gc
from mobilenet_study.grid import GridPoint, Run
from mobilenet_study.models import MODEL_NAMES, build
from mobilenet_study.params import ParamError, StudyError, load_params
from mobilenet_study.training.artifacts import load_trained, save_model
from mobilenet_study.training.pipeline import Preprocess

from .conftest import REPO_ROOT, PipelineRepo
from .test_train_stage import TINY_GRID, write_image_folder


class Tiny(nn.Module):
    """conv → BN → ReLU(inplace) → conv(stride 2) → ReLU(inplace) → GAP → linear: the models'
    shape, small enough for float64."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(
                nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(True)
            ),
            nn.Sequential(nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(inplace=True)),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(8, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def tiny_model(seed: int = 0) -> Tiny:
    torch.manual_seed(seed)
    model = Tiny().double()
    bn = model.features[0][1]
    # Running statistics away from (0, 1), so that eval mode visibly differs from train mode.
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    return model


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._backward_hooks for m in model.modules())


def direct_grad_cam(
    model: Tiny, x: torch.Tensor, classes: torch.Tensor, *, before_relu: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The formula, by autograd on a hand-written, out-of-place forward: (α, raw map at the
    layer's resolution), per image."""
    model.eval()
    conv, bn, _ = model.features[0]
    a = bn(conv(x)) if before_relu else F.relu(bn(conv(x)))
    a = a.detach().requires_grad_(True)
    rest = F.relu(a) if before_relu else a
    logits = model.classifier(torch.flatten(model.pool(model.features[1](rest)), 1))
    alphas, maps = [], []
    for n in range(len(x)):
        (grad,) = torch.autograd.grad(logits[n, classes[n]], a, retain_graph=True)
        alpha = grad[n].sum(dim=(1, 2)) / (grad.shape[2] * grad.shape[3])
        maps.append(torch.relu((alpha[:, None, None] * a[n]).sum(dim=0)).detach())
        alphas.append(alpha)
    return torch.stack(alphas), torch.stack(maps)


# ----------------------------------------------------------------------------- the definition


@pytest.mark.parametrize(("layer", "before_relu"), [("features.0.1", True), ("features.0", False)])
def test_weights_and_map_equal_the_formula(layer: str, before_relu: bool) -> None:
    model = tiny_model()
    x = torch.randn(4, 3, 12, 12, dtype=torch.float64)
    classes = torch.tensor([0, 3, 4, 1])
    result = gc.grad_cam_details(model, x, target_layer=layer, class_idx=classes)
    alpha, raw = direct_grad_cam(model, x, classes, before_relu=before_relu)
    if before_relu:
        # The BN output that an in-place ReLU overwrites: the captured maps must keep negatives.
        assert (result.activations < 0).any()
    torch.testing.assert_close(result.weights, alpha)
    torch.testing.assert_close(result.raw, raw)
    # The shown maps are the raw ones through upsample_and_scale (worked by hand below).
    torch.testing.assert_close(result.maps, gc.upsample_and_scale(raw, (12, 12)))
    assert result.maps.shape == (4, 12, 12) and result.layer == layer
    assert result.maps.amax(dim=(1, 2)).tolist() == [1.0] * 4


def test_upsample_and_scale_by_hand() -> None:
    """2×2 → 4×4 bilinear, align_corners=False: output i samples input i/2 - 0.25, clamped to
    [0, 1], so a row [0, 1] becomes a = [0, .25, .75, 1] and [[0, 0], [0, 2]] becomes
    2·outer(a, a); divided by its maximum 2: outer(a, a). Each map has its own maximum."""
    raw = torch.tensor([[[0.0, 0.0], [0.0, 2.0]], [[4.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    a = torch.tensor([0.0, 0.25, 0.75, 1.0], dtype=torch.float64)
    expected = torch.stack([torch.outer(a, a), torch.outer(a.flip(0), a.flip(0))])
    torch.testing.assert_close(gc.upsample_and_scale(raw, (4, 4)), expected)


def models_under_test(name: str, trained: bool) -> nn.Module:
    torch.manual_seed(1)
    model = build(name, 0.25)
    if trained:
        # A few SGD steps on synthetic data: non-trivial classifier weights and BN statistics.
        x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
        model.train()
        for _ in range(3):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    return model.eval()


@pytest.mark.parametrize("trained", [False, True], ids=["random", "trained"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_grad_cam_at_the_last_block_is_cam(name: str, trained: bool) -> None:
    """Last block → GAP → linear: ∂y_c/∂A^k_ij = w_ck / hw, so α_k^c = w_ck / hw and Grad-CAM
    is CAM times 1/hw > 0 — identical once both are scaled to their maximum."""
    model = models_under_test(name, trained)
    x = torch.randn(6, 3, 32, 32)
    result = gc.grad_cam_details(model, x)
    assert result.layer == f"features.{len(model.features) - 1}"
    h, w = result.activations.shape[-2:]
    linear = model.classifier[-1]
    torch.testing.assert_close(result.weights * (h * w), linear.weight[result.class_idx].detach())
    cam = gc.class_activation_map(model, x, result.class_idx)
    torch.testing.assert_close(result.maps, cam, atol=1e-5, rtol=1e-4)
    # Every class, not only the predicted one.
    for c in (0, 7):
        torch.testing.assert_close(
            gc.grad_cam(model, x, class_idx=c),
            gc.class_activation_map(model, x, c),
            atol=1e-5,
            rtol=1e-4,
        )
    assert not torch.equal(result.maps, torch.ones_like(result.maps))  # a real map, not flat


# ----------------------------------------------------------------------------- the contract


def test_batched_equals_one_image_at_a_time() -> None:
    # float64: in float32 a batch of 5 and a batch of 1 may take conv kernels that round apart.
    model = models_under_test("mobilenet_v1", trained=True).double()
    x = torch.randn(5, 3, 32, 32, dtype=torch.float64)
    classes = torch.tensor([1, 2, 3, 4, 5])
    for layer, class_idx in ((None, None), ("features.5", classes), ("features.11.pw", 3)):
        batched = gc.grad_cam(model, x, layer, class_idx)
        single = torch.cat(
            [
                gc.grad_cam(
                    model,
                    x[i : i + 1],
                    layer,
                    class_idx[i : i + 1] if isinstance(class_idx, torch.Tensor) else class_idx,
                )
                for i in range(len(x))
            ]
        )
        torch.testing.assert_close(batched, single, atol=1e-12, rtol=1e-12)


def test_default_class_is_the_prediction_and_int_equals_tensor() -> None:
    model = tiny_model()
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    result = gc.grad_cam_details(model, x)
    assert torch.equal(result.class_idx, model.eval()(x).argmax(dim=1))
    torch.testing.assert_close(
        gc.grad_cam(model, x, class_idx=2), gc.grad_cam(model, x, class_idx=torch.full((3,), 2))
    )


@pytest.mark.parametrize(
    "class_idx", [5, -1, torch.tensor([0, 1]), torch.tensor([0.0, 1.0, 2.0]), "cat", True]
)
def test_bad_class_idx_is_refused(class_idx: object) -> None:
    model = tiny_model()
    with pytest.raises(ValueError, match="class_idx"):
        gc.grad_cam(model, torch.randn(3, 3, 8, 8, dtype=torch.float64), class_idx=class_idx)
    assert no_hooks(model)


def test_state_is_restored_and_grads_untouched() -> None:
    model = tiny_model()
    model.train()
    model.features[0][1].eval()  # mixed modes, as with a frozen BatchNorm
    model.features[0][0].weight.requires_grad_(False)
    model(torch.randn(2, 3, 8, 8, dtype=torch.float64)).sum().backward()
    modes = [m.training for m in model.modules()]
    flags = [q.requires_grad for q in model.parameters()]
    grads = [None if q.grad is None else q.grad.clone() for q in model.parameters()]
    buffers = [b.clone() for b in model.buffers()]

    gc.grad_cam(model, torch.randn(4, 3, 8, 8, dtype=torch.float64))

    assert [m.training for m in model.modules()] == modes
    assert [q.requires_grad for q in model.parameters()] == flags
    for before, param in zip(grads, model.parameters(), strict=True):
        assert (param.grad is None) if before is None else torch.equal(param.grad, before)
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers(), strict=True))
    assert no_hooks(model)


def test_hooks_and_state_restored_after_an_exception() -> None:
    model = tiny_model().train()
    flags = [q.requires_grad for q in model.parameters()]
    with pytest.raises(RuntimeError):  # 4 input channels: the first conv fails mid-forward
        gc.grad_cam(model, torch.randn(2, 4, 8, 8, dtype=torch.float64))
    assert no_hooks(model)
    assert all(m.training for m in model.modules())
    assert [q.requires_grad for q in model.parameters()] == flags


def test_works_under_no_grad_and_inference_mode() -> None:
    model = tiny_model()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    expected = gc.grad_cam(model, x)
    with torch.no_grad():
        torch.testing.assert_close(gc.grad_cam(model, x), expected)
    with torch.inference_mode():
        torch.testing.assert_close(gc.grad_cam(model, x.clone()), expected)


def test_named_layers() -> None:
    model = build("mobilenet_v1", 0.25).eval()
    x = torch.randn(2, 3, 32, 32)
    by_name = gc.grad_cam_details(model, x, target_layer="features.11")
    torch.testing.assert_close(by_name.maps, gc.grad_cam(model, x, model.features[11]))
    assert by_name.activations.shape[-2:] == (4, 4)
    torch.testing.assert_close(gc.grad_cam(model, x), gc.grad_cam(model, x, "features.13"))
    assert gc.grad_cam_details(model, x, "features.13.pw.bn").layer == "features.13.pw.bn"


def test_bad_layer_is_a_clear_error() -> None:
    model = build("baseline", 0.25)
    with pytest.raises(ValueError, match=r"no layer named 'features\.99'.*features\.9"):
        gc.grad_cam(model, torch.randn(1, 3, 32, 32), target_layer="features.99")
    with pytest.raises(ValueError, match="not a submodule"):
        gc.grad_cam(model, torch.randn(1, 3, 32, 32), target_layer=nn.ReLU())
    with pytest.raises(ValueError, match="pass target_layer"):
        gc.grad_cam(nn.Sequential(nn.Conv2d(3, 2, 1), nn.Flatten()), torch.randn(1, 3, 4, 4))
    assert no_hooks(model)


def test_a_map_with_no_positive_evidence_stays_zero() -> None:
    model = tiny_model()
    with torch.no_grad():
        model.classifier[1].weight.fill_(-1.0)  # the last block's maps are ≥ 0 (after ReLU)
    maps = gc.grad_cam(model, torch.randn(2, 3, 8, 8, dtype=torch.float64))
    assert torch.equal(maps, torch.zeros_like(maps))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    model = models_under_test("mobilenet_v2", trained=True)
    x = torch.randn(4, 3, 32, 32)
    cpu = gc.grad_cam(model, x)
    cuda = gc.grad_cam(model.cuda(), x.cuda())
    assert cuda.device.type == "cuda"
    torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-3, rtol=1e-3)


# ----------------------------------------------------------------------------- stage helpers


def test_params_defaults_are_valid_and_runs_checked_against_the_grid() -> None:
    params = load_params(REPO_ROOT / "params.yaml")
    config = gc.GradCamParams.from_params(params)
    assert config.runs == (
        "baseline-1.0-1.0-0",
        "mobilenet_v1-1.0-1.0-0",
        "mobilenet_v1-0.25-0.5-0",
    )
    params["gradcam"]["runs"] = ["baseline-1.0-1.0-0", "mobilenet_v1-0.3-1.0-0"]
    with pytest.raises(ParamError, match=r"`gradcam\.runs\[1\]` is 'mobilenet_v1-0.3-1.0-0'"):
        gc.GradCamParams.from_params(params)
    # A grid point without its seed is not a run.
    params["gradcam"]["runs"] = ["baseline-1.0-1.0"]
    with pytest.raises(ParamError, match=r"a trained run \(<model>-<α>-<ρ>-<seed>\)"):
        gc.GradCamParams.from_params(params)
    params["gradcam"]["runs"] = ["baseline-1.0-1.0-0", "baseline-1.0-1.0-0"]
    with pytest.raises(ParamError, match="distinct"):
        gc.GradCamParams.from_params(params)
    params["gradcam"]["runs"] = ["baseline-1.0-1.0-0"]
    params["gradcam"]["images_per_class"] = 0
    with pytest.raises(ParamError, match="images_per_class"):
        gc.GradCamParams.from_params(params)


def test_image_selection_is_seeded_and_balanced() -> None:
    labels = np.repeat(np.arange(10), 7)
    np.random.default_rng(3).shuffle(labels)
    picks = gc.select_images(labels, 2, seed=0, num_classes=10)
    assert np.array_equal(picks, gc.select_images(labels, 2, seed=0, num_classes=10))
    assert labels[picks].tolist() == sorted(list(range(10)) * 2)
    assert not np.array_equal(picks, gc.select_images(labels, 2, seed=1, num_classes=10))
    with pytest.raises(StudyError, match="fewer than"):
        gc.select_images(labels, 8, seed=0, num_classes=10)


@pytest.mark.parametrize(
    ("name", "side", "expected"),
    [
        ("mobilenet_v1", 32, "features.11"),
        ("mobilenet_v1", 16, "features.5"),
        ("mobilenet_v2", 32, "features.18"),
    ],
)
def test_last_block_with_side(name: str, side: int, expected: str) -> None:
    model = build(name, 0.25)
    assert gc.last_block_with_side(model, side, 4) == expected
    assert gc.last_block_with_side(model, side, 1) == f"features.{len(model.features) - 1}"


def test_load_trained_round_trip(tmp_path: Path) -> None:
    model = models_under_test("baseline", trained=True)
    point = Run(GridPoint("baseline", 0.25, 0.5), seed=0)
    preprocess = Preprocess.create((0.5, 0.4, 0.3), (0.2, 0.2, 0.25), 16, torch.device("cpu"))
    save_model(tmp_path / "model.pt", model, point, preprocess)
    trained = load_trained(tmp_path / "model.pt")
    assert (trained.name, trained.width, trained.input_size) == ("baseline", 0.25, 16)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(trained.model(x), model(x))
    with pytest.raises(StudyError, match="does not exist"):
        load_trained(tmp_path / "missing.pt")
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    explanation = gc.explain(trained, images, "features.5")
    assert explanation.inputs.shape == (3, 16, 16, 3) and explanation.maps.shape == (3, 16, 16)
    # The softmax probability of the arg-max of 10 classes is at least 1/10.
    assert np.all((explanation.confidence >= 0.1) & (explanation.confidence <= 1))
    with torch.no_grad():
        batch = torch.from_numpy(images).permute(0, 3, 1, 2)
        logits = trained.model.eval()(preprocess(batch))
    np.testing.assert_array_equal(explanation.predicted, logits.argmax(dim=1).numpy())


# ----------------------------------------------------------------------------- the stage


@pytest.mark.slow
def test_gradcam_stage_through_dvc(pipeline_repo: PipelineRepo, tmp_path: Path) -> None:
    repo = pipeline_repo
    folder = write_image_folder(tmp_path / "mirror", {"train": 10, "test": 2})
    runs = ["mobilenet_v2-0.125-0.5-0", "mobilenet_v1-0.25-0.5-0"]
    repo.set_params({**TINY_GRID, "data.source": str(folder), "gradcam.runs": runs})
    repo.commit("tiny configuration")

    first = repo.dvc("repro", "gradcam").stdout
    for run in runs:
        with Image.open(repo.path / f"plots/gradcam/{run}.png") as image:
            assert image.width > 300 and image.height > 1000
        assert f"Running stage 'gradcam@{run}'" in first
    # Exactly the listed runs' models: the other grid point is never trained for it.
    assert "baseline" not in first
    assert "Running stage" not in repo.dvc("repro", "gradcam").stdout

    # A new image selection outdates the figures, not the training (`dvc status`: no rerun).
    repo.set_params({"gradcam.seed": 1})
    status = repo.dvc("status", "gradcam").stdout
    assert all(f"gradcam@{run}:" in status for run in runs) and "train" not in status
    # Adding a run adds its stage; the others stay up to date.
    repo.set_params({"gradcam.seed": 0, "gradcam.runs": [*runs, "baseline-0.25-0.5-0"]})
    status = repo.dvc("status", "gradcam").stdout
    assert "gradcam@baseline-0.25-0.5-0:" in status
    assert not any(f"gradcam@{run}:" in status for run in runs)

    # A run that is not a trained grid point fails before any work, naming the key.
    before = (repo.path / f"plots/gradcam/{runs[0]}.png").stat().st_mtime_ns
    repo.set_params({"gradcam.runs": [runs[0], "mobilenet_v1-0.3-1.0-0"]})
    result = repo.run("python", "stages/gradcam.py", runs[0], check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "`gradcam.runs[1]` is 'mobilenet_v1-0.3-1.0-0'" in result.stderr
    assert (repo.path / f"plots/gradcam/{runs[0]}.png").stat().st_mtime_ns == before
