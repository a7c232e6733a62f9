"""Grad-CAM's ReLU, measured (Q4b) on a trained run of the study.

- How much of the raw map Σ_k α_k^c A^k is negative before the ReLU removes it: per image, the
  share of its positions with a negative value, and the share of the map's absolute mass.
- A deletion test: masking the pixels Grad-CAM ranks highest should lower the class score y_c
  more than masking as many pixels at random, if the map's positive part marks evidence for c.
  Masked pixels are set to the dataset mean (0 after normalisation). Per image the two drops
  are paired; the mean of their difference gets a 95% t-interval over the images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import stats

from mobilenet_study.gradcam import grad_cam_details
from mobilenet_study.training.artifacts import TrainedModel
from mobilenet_study.training.pipeline import Preprocess


@dataclass(frozen=True)
class Deletion:
    """Per image: y_c as predicted, after masking the top-CAM pixels, after masking random."""

    per_image: pd.DataFrame  # score, score_cam_masked, score_random_masked, negative shares

    def summary(self, confidence: float = 0.95) -> dict[str, float]:
        t = self.per_image
        cam_drop = t["score"] - t["score_cam_masked"]
        random_drop = t["score"] - t["score_random_masked"]
        difference = (cam_drop - random_drop).to_numpy()
        n = len(difference)
        mean = float(difference.mean())
        half = (
            float(stats.t.ppf(0.5 + confidence / 2, n - 1) * difference.std(ddof=1) / np.sqrt(n))
            if n > 1
            else float("nan")
        )
        return {
            "images": n,
            "negative_position_share_mean": float(t["negative_position_share"].mean()),
            "negative_mass_share_mean": float(t["negative_mass_share"].mean()),
            "images_with_negative_part": int((t["negative_position_share"] > 0).sum()),
            "cam_drop_mean": float(cam_drop.mean()),
            "random_drop_mean": float(random_drop.mean()),
            "difference_mean": mean,
            "difference_ci_low": mean - half,
            "difference_ci_high": mean + half,
            "difference_p_value": float(stats.ttest_1samp(difference, 0.0).pvalue)
            if n > 1
            else float("nan"),
            "cam_larger_share": float((difference > 0).mean()),
        }


def class_scores(model: torch.nn.Module, inputs: torch.Tensor, classes: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(inputs).gather(1, classes[:, None])[:, 0].cpu().numpy()


def deletion_test(
    trained: TrainedModel, images: np.ndarray, layer: str, fraction: float, seed: int
) -> Deletion:
    """Grad-CAM of each uint8 (N, 32, 32, 3) image for its predicted class at ``layer``, its raw
    map's negative part, and the deletion test masking ``fraction`` of the input's pixels."""
    model = trained.model.eval()
    cpu = torch.device("cpu")
    preprocess = Preprocess.create(trained.mean, trained.std, trained.input_size, cpu)
    inputs = preprocess(torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2))
    result = grad_cam_details(model, inputs, target_layer=layer)
    signed = torch.einsum("nk,nkhw->nhw", result.weights, result.activations)
    n, _, height, width = inputs.shape
    pixels = height * width
    k = max(1, round(fraction * pixels))
    ranked = result.maps.reshape(n, pixels).argsort(dim=1, descending=True)[:, :k]
    generator = torch.Generator().manual_seed(seed)
    random = torch.stack([torch.randperm(pixels, generator=generator)[:k] for _ in range(n)])

    def masked(chosen: torch.Tensor) -> torch.Tensor:
        keep = torch.ones(n, pixels)
        keep.scatter_(1, chosen, 0.0)
        return inputs * keep.view(n, 1, height, width)

    classes = result.class_idx
    flat = signed.reshape(n, -1)
    return Deletion(
        pd.DataFrame(
            {
                "class": classes.cpu().numpy(),
                "score": class_scores(model, inputs, classes),
                "score_cam_masked": class_scores(model, masked(ranked), classes),
                "score_random_masked": class_scores(model, masked(random), classes),
                "negative_position_share": (flat < 0).float().mean(1).numpy(),
                "negative_mass_share": (
                    flat.clamp(max=0).abs().sum(1) / flat.abs().sum(1).clamp(min=1e-12)
                ).numpy(),
            }
        )
    )


def gradcam_relu(
    trained: TrainedModel, images: np.ndarray, layer: str, fraction: float, seed: int
) -> tuple[pd.DataFrame, dict[str, float | int | str]]:
    """Q4b on ``images`` (uint8): the per-image table and the summary the PDF quotes."""
    deletion = deletion_test(trained, images, layer, fraction, seed)
    summary = {"layer": layer, "deleted_fraction": fraction, **deletion.summary()}
    return deletion.per_image, summary
