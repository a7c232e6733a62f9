"""Grad-CAM (Selvaraju et al. 2017): where in the image a trained model finds its evidence.

For class c with pre-softmax score y_c and the target layer's feature maps A^k (h×w), the
weight of map k is α_k^c = (1/hw) Σ_ij ∂y_c/∂A^k_ij, and the map is ReLU(Σ_k α_k^c A^k),
upsampled bilinearly to the input size and divided by its maximum (per image; an all-zero
map stays zero). :func:`grad_cam` is the public entry point.

Below it: what the `gradcam` stage needs to render a trained run (loaded by
:func:`mobilenet_study.training.artifacts.load_trained`): its params, the seeded choice of test
images, and the figure.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mobilenet_study import params as p
from mobilenet_study.grid import MIN_INPUT_SIZE, Grid
from mobilenet_study.params import StudyError
from mobilenet_study.training.artifacts import TrainedModel
from mobilenet_study.training.pipeline import Preprocess

# --------------------------------------------------------------------------------------------
# Grad-CAM itself


@dataclass(frozen=True)
class GradCamResult:
    """Everything Grad-CAM computed for a batch of N images (all detached, on their device)."""

    maps: torch.Tensor  # (N, H, W) at the input size, each scaled to [0, 1]
    raw: torch.Tensor  # (N, h, w) ReLU(Σ_k α_k^c A^k) at the layer's resolution, unscaled
    weights: torch.Tensor  # (N, K) α_k^c
    activations: torch.Tensor  # (N, K, h, w) A^k, as the layer output them
    logits: torch.Tensor  # (N, C) pre-softmax scores
    class_idx: torch.Tensor  # (N,) the class each map explains
    layer: str  # the target layer's name in model.named_modules()


def resolve_layer(model: nn.Module, target_layer: str | nn.Module | None) -> tuple[str, nn.Module]:
    """``(name, module)`` of the target layer: by default the model's last feature block."""
    named = dict(model.named_modules())
    if target_layer is None:
        features = getattr(model, "features", None)
        if not isinstance(features, nn.Sequential) or len(features) == 0:
            raise ValueError(
                f"{type(model).__name__} has no `features` nn.Sequential to take the last block "
                "of; pass target_layer (a name from model.named_modules())"
            )
        target_layer = features[-1]
    if isinstance(target_layer, str):
        if target_layer not in named or target_layer == "":
            close = difflib.get_close_matches(target_layer, [n for n in named if n], n=5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"no layer named {target_layer!r} in {type(model).__name__} (names as in "
                f"model.named_modules(), e.g. 'features.3'){hint}"
            )
        return target_layer, named[target_layer]
    for name, module in named.items():
        if module is target_layer and name:
            return name, module
    raise ValueError(f"target layer {type(target_layer).__name__} is not a submodule of the model")


class _Capture:
    """Forward hook: keep the layer's output as a leaf tensor that requires grad.

    The rest of the network is fed a *copy*: the models use ReLU(inplace=True), and an in-place
    op after the layer (e.g. when the layer is a BatchNorm) would otherwise overwrite the very
    values captured. Detaching also means nothing before the layer is recorded for autograd.
    """

    def __init__(self) -> None:
        self.outputs: list[torch.Tensor] = []

    def __call__(self, module: nn.Module, inputs: Any, output: Any) -> torch.Tensor:
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            raise ValueError(
                f"the target layer must output one (N, K, h, w) tensor, got "
                f"{getattr(output, 'shape', type(output).__name__)}"
            )
        leaf = output.detach().requires_grad_(True)
        self.outputs.append(leaf)
        return leaf.clone()


def _targets(class_idx: int | torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor:
    n, num_classes = logits.shape
    if class_idx is None:
        return logits.argmax(dim=1)
    if isinstance(class_idx, torch.Tensor):
        integral = not (class_idx.dtype.is_floating_point or class_idx.dtype.is_complex)
        if class_idx.shape != (n,) or not integral or class_idx.dtype == torch.bool:
            raise ValueError(
                f"class_idx must be an int or an integer tensor of shape ({n},), got "
                f"{class_idx.dtype} {tuple(class_idx.shape)}"
            )
        target = class_idx.to(device=logits.device, dtype=torch.long)
    elif isinstance(class_idx, (int, np.integer)) and not isinstance(class_idx, bool):
        target = torch.full((n,), int(class_idx), dtype=torch.long, device=logits.device)
    else:
        raise ValueError(f"class_idx must be None, an int or a tensor, got {class_idx!r}")
    if n and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"class_idx must lie in [0, {num_classes}), got {class_idx!r}")
    return target


def upsample_and_scale(raw: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """(N, h, w) non-negative maps → (N, H, W), bilinear, each divided by its maximum.

    Divided by the maximum rather than min-max scaled: zero keeps its meaning ("no positive
    evidence"), a map that is zero everywhere stays zero, and two maps that differ by a positive
    factor (Grad-CAM and CAM at the last block) come out identical.
    """
    up = F.interpolate(raw[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    peak = up.amax(dim=(1, 2), keepdim=True)
    return up / peak.clamp_min(torch.finfo(up.dtype).tiny)


@dataclass
class _ModelState:
    """The train/eval mode of every module and the requires_grad flag of every parameter."""

    modes: list[tuple[nn.Module, bool]]
    flags: list[tuple[nn.Parameter, bool]]

    @classmethod
    def save(cls, model: nn.Module) -> _ModelState:
        return cls(
            [(m, m.training) for m in model.modules()],
            [(q, q.requires_grad) for q in model.parameters()],
        )

    def restore(self) -> None:
        # Per module: a caller may hold mixed modes (e.g. frozen BatchNorm in a training model).
        for module, training in self.modes:
            module.training = training
        for param, flag in self.flags:
            param.requires_grad_(flag)


def grad_cam_details(
    model: nn.Module,
    images: torch.Tensor,
    target_layer: str | nn.Module | None = None,
    class_idx: int | torch.Tensor | None = None,
) -> GradCamResult:
    """Grad-CAM for a batch of preprocessed ``images`` (N, C, H, W), with its intermediates.

    ``target_layer``: a name from ``model.named_modules()`` or the module; default
    ``model.features[-1]``. ``class_idx``: None (each image's predicted class), an int, or a
    tensor of N class indices. The model runs in eval mode (BatchNorm with running statistics,
    no dropout); its modes, requires_grad flags and parameters' ``.grad`` are left as found.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be a (N, C, H, W) batch, got shape {tuple(images.shape)}")
    name, layer = resolve_layer(model, target_layer)
    state = _ModelState.save(model)
    capture = _Capture()
    handle = layer.register_forward_hook(capture)
    try:
        model.eval()
        # No weight gradients are needed; torch.autograd.grad below never touches .grad either.
        for param in model.parameters():
            param.requires_grad_(False)
        # Gradients are needed even when called under no_grad() or inference_mode().
        with torch.inference_mode(False), torch.enable_grad():
            logits = model(images.detach())
            if len(capture.outputs) != 1:
                raise ValueError(
                    f"layer {name!r} ran {len(capture.outputs)} times in one forward pass; "
                    "Grad-CAM needs a layer that runs exactly once"
                )
            if logits.dim() != 2:
                raise ValueError(f"the model must output (N, classes) scores, got {logits.shape}")
            activations = capture.outputs[0]
            target = _targets(class_idx, logits)
            # Images are independent in eval mode, so the gradient of the sum of each image's
            # target score is, per image, the gradient of its own score.
            score = logits.gather(1, target[:, None]).sum()
            (grads,) = torch.autograd.grad(score, activations, allow_unused=True)
        if grads is None:
            raise ValueError(f"the model's scores do not depend on layer {name!r}")
    finally:
        handle.remove()
        state.restore()
    activations = activations.detach()
    weights = grads.mean(dim=(2, 3))
    raw = F.relu(torch.einsum("nk,nkhw->nhw", weights, activations))
    return GradCamResult(
        maps=upsample_and_scale(raw, images.shape[-2:]),
        raw=raw,
        weights=weights,
        activations=activations,
        logits=logits.detach(),
        class_idx=target,
        layer=name,
    )


def grad_cam(
    model: nn.Module,
    images: torch.Tensor,
    target_layer: str | nn.Module | None = None,
    class_idx: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """Grad-CAM maps (N, H, W) in [0, 1] for preprocessed ``images`` (N, C, H, W).

    See :func:`grad_cam_details` for the arguments; this returns only its ``maps``.
    """
    return grad_cam_details(model, images, target_layer, class_idx).maps


def class_activation_map(
    model: nn.Module, images: torch.Tensor, class_idx: int | torch.Tensor | None = None
) -> torch.Tensor:
    """CAM (Zhou et al. 2016) for a ``features`` → global average pool → linear model.

    ReLU(Σ_k w_k^c A^k) with A the last feature block's output and w^c the classifier's row
    for class c, upsampled and scaled like Grad-CAM. Grad-CAM at the last block reduces to it.
    """
    linear = model.classifier[-1]
    state = _ModelState.save(model)
    try:
        model.eval()
        with torch.no_grad():
            activations = model.features(images)
            logits = model(images)
    finally:
        state.restore()
    target = _targets(class_idx, logits)
    raw = F.relu(torch.einsum("nk,nkhw->nhw", linear.weight[target].detach(), activations))
    return upsample_and_scale(raw, images.shape[-2:])


# --------------------------------------------------------------------------------------------
# The `gradcam` stage: which runs and images, the trained model, the figure

MAX_IMAGES_PER_CLASS = 10  # the figure has one row per class and two panels per image


@dataclass(frozen=True)
class GradCamParams(p.Section):
    """params.yaml `gradcam:` — which trained runs to explain, on which test images."""

    SECTION = "gradcam"

    runs: tuple[str, ...]
    images_per_class: int = p.setting(low=1, high=MAX_IMAGES_PER_CLASS)
    seed: int = p.setting(low=0)
    # At most the smallest input side the grid allows, so every run has such a layer.
    min_side: int = p.setting(low=1, high=MIN_INPUT_SIZE)

    def checked(self, params: Mapping[str, Any], key: str) -> GradCamParams:
        """Every run named must be one the grid trains."""
        trained = [run.name for run in Grid.from_params(params).runs]
        for i, run in enumerate(self.runs):
            if run not in trained:
                raise p.ParamError(
                    f"{key}.runs[{i}]",
                    run,
                    f"allowed: a trained run (<model>-<α>-<ρ>-<seed>): {', '.join(trained)}",
                )
        return self


def select_images(labels: np.ndarray, per_class: int, seed: int, num_classes: int) -> np.ndarray:
    """Indices of ``per_class`` images of each class, seeded, ordered by class then index."""
    rng = np.random.default_rng(seed)
    picks = []
    for label in range(num_classes):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise StudyError(
                f"the test split has {len(members)} images of class {label}, fewer than "
                f"gradcam.images_per_class = {per_class}"
            )
        picks.append(np.sort(rng.choice(members, size=per_class, replace=False)))
    return np.concatenate(picks)


def last_block_with_side(model: nn.Module, input_size: int, min_side: int) -> str:
    """Name of the last ``features`` block whose map is at least ``min_side`` on each side.

    At CIFAR sizes the last block's map is tiny (MobileNet V1: 2×2 at 32 px, 1×1 at 16 px),
    which leaves Grad-CAM nothing to localise; an earlier block keeps some resolution.
    """
    state = _ModelState.save(model)
    name = "features.0"
    try:
        model.eval()
        x = torch.zeros(1, 3, input_size, input_size, device=next(model.parameters()).device)
        with torch.no_grad():
            for i, block in enumerate(model.features):
                x = block(x)
                if min(x.shape[-2:]) >= min_side:
                    name = f"features.{i}"
    finally:
        state.restore()
    return name


@dataclass(frozen=True)
class Explanation:
    """What one run's figure shows, per image: its input as the model saw it, and the map."""

    inputs: np.ndarray  # (N, s, s, 3) in [0, 1]: the test image resized to the run's input side
    maps: np.ndarray  # (N, s, s) Grad-CAM for the predicted class, in [0, 1]
    predicted: np.ndarray  # (N,) class index
    confidence: np.ndarray  # (N,) softmax probability of the predicted class
    layer: str
    map_side: tuple[int, int]  # the target layer's (h, w)


def explain(trained: TrainedModel, images: np.ndarray, layer: str) -> Explanation:
    """Grad-CAM of each uint8 (N, 32, 32, 3) image for the class the model predicts."""

    device = next(trained.model.parameters()).device
    preprocess = Preprocess.create(trained.mean, trained.std, trained.input_size, device)
    batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(device)
    inputs = preprocess(batch)
    result = grad_cam_details(trained.model, inputs, target_layer=layer)
    shown = (inputs * preprocess.std + preprocess.mean).clamp(0, 1).permute(0, 2, 3, 1)
    probs = result.logits.softmax(dim=1)
    return Explanation(
        inputs=shown.cpu().numpy(),
        maps=result.maps.cpu().numpy(),
        predicted=result.class_idx.cpu().numpy(),
        confidence=probs.gather(1, result.class_idx[:, None])[:, 0].cpu().numpy(),
        layer=result.layer,
        map_side=(int(result.raw.shape[1]), int(result.raw.shape[2])),
    )


def gradcam_figure(
    run: str,
    trained: TrainedModel,
    explanation: Explanation,
    labels: np.ndarray,
    classes: Sequence[str],
    *,
    per_row: int,
    data: str,
) -> Any:
    """``per_row`` images a row (one row per class, as :func:`select_images` orders them): for
    each, the model's input and the Grad-CAM overlay, with the true and predicted class."""
    # Only the figure needs matplotlib; Grad-CAM itself (grad_cam) is used without it.
    from matplotlib import cm
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    n = len(labels)
    rows = max(1, -(-n // per_row))
    cols = 2 * per_row
    # A fixed layout in inches (a layout engine costs seconds for 40 axes and buys nothing).
    panel, gap, title_h, top_h, bottom_h = 1.25, 0.12, 0.3, 0.7, 0.75
    width = cols * panel + (cols - 1) * gap + 0.3
    height = rows * (panel + title_h) + top_h + bottom_h
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(rows, cols, squeeze=False)
    fig.subplots_adjust(
        left=0.15 / width,
        right=1 - 0.15 / width,
        top=1 - (top_h + title_h) / height,
        bottom=bottom_h / height,
        wspace=gap / panel,
        hspace=title_h / panel,
    )
    for ax in axes.flat:
        ax.set_axis_off()
    for i in range(n):
        row, col = divmod(i, per_row)
        image_ax, overlay_ax = axes[row, 2 * col], axes[row, 2 * col + 1]
        image_ax.imshow(explanation.inputs[i], interpolation="nearest")
        image_ax.set_title(f"true: {classes[labels[i]]}", fontsize=8)
        overlay_ax.imshow(explanation.inputs[i], interpolation="nearest")
        overlay_ax.imshow(
            explanation.maps[i], cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="bilinear"
        )
        predicted = int(explanation.predicted[i])
        right = predicted == int(labels[i])
        overlay_ax.set_title(
            f"pred: {classes[predicted]} {explanation.confidence[i]:.0%}",
            fontsize=8,
            color="darkgreen" if right else "firebrick",
        )
    correct = int((explanation.predicted == labels).sum())
    h, w = explanation.map_side
    side = trained.input_size
    fig.suptitle(
        f"Grad-CAM · {run} ({trained.name}, α = {trained.width:g}, ρ = {trained.resolution:g}, "
        f"input {side}×{side} px)\n"
        f"layer {explanation.layer} ({h}×{w} map), map for the predicted class · "
        f"{correct}/{n} correct · test images: {data}",
        fontsize=9,
        y=1 - 0.1 / height,
        va="top",
    )
    bar = fig.add_axes((0.2, 0.4 / height, 0.6, 0.12 / height))
    fig.colorbar(
        cm.ScalarMappable(norm=Normalize(0, 1), cmap="jet"),
        cax=bar,
        orientation="horizontal",
        label="Grad-CAM, scaled to its maximum (0: no evidence for the class)",
    )
    return fig
