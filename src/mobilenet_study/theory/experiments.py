"""The theory stages' experiments, from validated params to tables and a metrics summary.

Each function returns plain tables (one row per layer, step or image) for plots/theory/ and a
summary of the numbers the PDF quotes, with the verdicts computed here, where they are tested:
the document only words them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from mobilenet_study.theory import nets
from mobilenet_study.theory.config import Schedule, TheoryParams
from mobilenet_study.theory.propagation import measure, textbook_ratio
from mobilenet_study.theory.symmetry import distinct_per_layer
from mobilenet_study.theory.training import TrainingImages, sgd_run

CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over CIFAR-10's 10 classes
# A run "stalls" when its final training loss (the mean over the last quarter of the logged
# batches, thousands of images) is still within this share of chance, 0.012 nats: several
# times the standard error of such a mean (per-image cross-entropy near chance varies by
# about 0.1 nats), so a network that learns anything measurable is not called stalled.
STALL_MARGIN = 0.005
# Plain-n's first-layer gradient "vanished" if, at the end of training (the last quarter of the
# logged points), it is below this share of the shallower plain network's.
VANISHED_SHARE = 0.01


@dataclass(frozen=True)
class Outcome:
    tables: dict[str, pd.DataFrame]
    summary: dict[str, Any]


def _plain(config: TheoryParams, init: str, draw: int = 0) -> nets.DeepCNN:
    return nets.build(
        config.plain.depth,
        config.plain.widths,
        init=init,
        batch_norm=False,
        seed=config.seed + draw,
    )


def _final(log: pd.DataFrame, column: str) -> float:
    """The mean of ``column`` over the last quarter of the logged points (at least one)."""
    tail = max(1, len(log) // 4)
    return float(log[column].iloc[-tail:].mean())


def initialisation(config: TheoryParams, data: TrainingImages) -> Outcome:
    """Q1a/b: propagation at init (zero, Xavier, He), symmetry after training from zero,
    constant and He starts, and Xavier against He in training."""
    images, labels = data.sample(config.images, config.seed)
    layers, propagation = _propagation(config, images, labels)
    symmetry_rows, symmetry = _symmetry(config, data)
    curves, training = _init_training(config, data)
    return Outcome(
        tables={
            "propagation": layers,
            "symmetry": symmetry_rows,
            "init_training": curves,
        },
        summary={
            "plain": {
                "depth": config.plain.depth,
                "conv_layers": config.plain.depth - 1,
                "widths": list(config.plain.widths),
                "images": len(labels),
                "input_size": config.input_size,
            },
            "propagation": propagation,
            "symmetry": {"steps": config.symmetry.steps, **symmetry},
            "init_training": {
                "steps": config.init_training.steps,
                "batch_size": config.init_training.batch_size,
                "lr": config.init_training.lr,
                "chance_loss": CHANCE_LOSS,
                "stall_margin": STALL_MARGIN,
                **training,
            },
        },
    )


def _propagation(
    config: TheoryParams, images: torch.Tensor, labels: torch.Tensor
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Per layer and per initialisation (the first draw of the weights), and each
    initialisation's summary. The closed form is an expectation over the weights; one draw's
    ratio is a product of one random gain per layer, which in a typical draw lies below that
    mean. So the summary also gives the ratio over all ``config.draws`` draws — of the mean
    squares, the quantity the closed form predicts — and the median draw's."""
    layers, summary = [], {}
    for init in ("zero", "xavier", "he"):
        found = measure(_plain(config, init), images, labels, init)
        layers.append(found.layers)
        t = found.layers
        weight_grad = found.ratio("weight_grad_norm")
        squares, ratios = [], []
        for draw in range(config.draws if init != "zero" else 0):
            rms = found if draw == 0 else measure(_plain(config, init, draw), images, labels, init)
            values = rms.layers["activation_rms"].to_numpy()
            squares.append((values[0] ** 2, values[-1] ** 2))
            ratios.append(values[-1] / values[0])
        first, last = (float(sum(pair[i] for pair in squares)) for i in (0, 1))
        summary[init] = {
            "draws": len(ratios),
            "rms_ratio_over_draws": math.sqrt(last / first) if squares else math.nan,
            "rms_ratio_median_draw": float(np.median(ratios)) if ratios else math.nan,
            "activation_std_ratio": found.ratio("activation_std"),
            "activation_rms_ratio": found.ratio("activation_rms"),
            "expected_rms_ratio": found.ratio("expected_rms"),
            "textbook_ratio": textbook_ratio(init, len(t)),
            "weight_grad_ratio_first_over_last": 1 / weight_grad if weight_grad else math.nan,
            "all_activations_zero": bool((t["activation_rms"] == 0).all()),
            "all_conv_weight_grads_zero": bool((t["weight_grad_norm"] == 0).all()),
            "classifier_weight_grad_norm": found.classifier_weight_grad_norm,
            "classifier_bias_grad_norm": found.classifier_bias_grad_norm,
        }
    return pd.concat(layers, ignore_index=True), summary


def _symmetry(
    config: TheoryParams, data: TrainingImages
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Distinct filters per layer before and after training from each start."""
    rows, summary = [], {}
    for init in ("zero", "constant", "he"):
        model = _plain(config, init)
        before = distinct_per_layer([conv.weight for conv in model.convs()])
        log = sgd_run(model, data, config.symmetry, config.seed)
        after = distinct_per_layer([conv.weight for conv in model.convs()])
        filters = [conv.out_channels for conv in model.convs()]
        for layer, (b, a, f) in enumerate(zip(before, after, filters, strict=True), start=1):
            rows.append(
                {"init": init, "layer": layer, "filters": f}
                | {"distinct_before": b, "distinct_after": a}
            )
        summary[init] = {
            "distinct_after_max": max(after),
            "distinct_after_min": min(after),
            "filters_total": sum(filters),
            "distinct_after_total": sum(after),
            "final_train_loss": _final(log, "train_loss"),
        }
    return pd.DataFrame(rows), summary


def _init_training(
    config: TheoryParams, data: TrainingImages
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Training-loss curves of the plain network from Xavier and from He, and whether each
    stalled (its last logged loss within :data:`STALL_MARGIN` of chance)."""
    curves, summary = [], {}
    for init in ("xavier", "he"):
        log = sgd_run(_plain(config, init), data, config.init_training, config.seed)
        log.insert(0, "init", init)
        curves.append(log)
        last = _final(log, "train_loss")
        summary[init] = {
            "first_train_loss": float(log["train_loss"].iloc[0]),
            "final_train_loss": last,
            "final_train_error": _final(log, "train_error"),
            "stalled": not math.isfinite(last) or last > CHANCE_LOSS * (1 - STALL_MARGIN),
        }
    return pd.concat(curves, ignore_index=True), summary


def degradation(config: TheoryParams, data: TrainingImages) -> Outcome:
    """Q1a/c: plain-n against ResNet-n at each depth, one recipe, from the same seed."""
    d = config.degradation
    curves, runs = [], {}
    for depth in d.depths:
        for shortcuts in (False, True):
            name = network_name(depth, shortcuts)
            log = train_network(config, data, depth, shortcuts, d.schedule)
            log.insert(0, "network", name)
            curves.append(log)
            runs[name] = {
                "final_train_error": _final(log, "train_error"),
                "final_train_loss": _final(log, "train_loss"),
                "first_layer_grad_norm_start": float(log["first_layer_grad_norm"].iloc[0]),
                "first_layer_grad_norm_end": float(log["first_layer_grad_norm"].iloc[-1]),
                "first_layer_grad_norm_final": _final(log, "first_layer_grad_norm"),
            }
    table = pd.concat(curves, ignore_index=True)
    shallow, deep = d.depths[0], d.depths[-1]
    return Outcome(
        tables={"degradation": table},
        summary={
            **degradation_settings(config),
            "steps": d.schedule.steps,
            "runs": runs,
            "shallow": shallow,
            "deep": deep,
            **orderings(table, runs, shallow, deep),
        },
    )


def degradation_settings(config: TheoryParams) -> dict[str, Any]:
    """What the degradation verdicts depend on besides the number of steps: the summary
    carries them, and docs/theory.typ quotes benchmarks/theory_budget.py's longer run only
    where its settings equal these."""
    d = config.degradation
    return {
        "depths": list(d.depths),
        "widths": list(d.widths),
        "input_size": config.input_size,
        "seed": config.seed,
        "batch_size": d.schedule.batch_size,
        "lr": d.schedule.lr,
        "log_every": d.schedule.log_every,
    }


def network_name(depth: int, shortcuts: bool) -> str:
    return f"{'resnet' if shortcuts else 'plain'}-{depth}"


def train_network(
    config: TheoryParams, data: TrainingImages, depth: int, shortcuts: bool, schedule: Schedule
) -> pd.DataFrame:
    """One network of the degradation comparison (``config.degradation.widths``, BatchNorm,
    He init) trained by ``schedule`` from ``config.seed``: its log. The schedule's rate is
    constant and its batches come from the seed, so a run of fewer steps is exactly a prefix of
    a longer one's log (benchmarks/theory_budget.py relies on it)."""
    torch.manual_seed(config.seed)
    model = nets.build(
        depth,
        config.degradation.widths,
        init="he",
        batch_norm=True,
        shortcuts=shortcuts,
        seed=config.seed,
    )
    return sgd_run(model, data, schedule, config.seed)


def orderings(
    table: pd.DataFrame, runs: dict[str, dict[str, float]], shallow: int, deep: int
) -> dict[str, Any]:
    """Which of He et al. 2016 Fig. 6's orderings this run reproduces, by the final training
    error, and at what share of the logged points; whether plain-deep's gradient vanished."""

    def error(name: str) -> pd.Series:
        return table[table["network"] == name]["train_error"].reset_index(drop=True)

    def higher_share(a: str, b: str) -> float:
        return float((error(a) > error(b)).mean())

    plain_s, plain_d = f"plain-{shallow}", f"plain-{deep}"
    res_s, res_d = f"resnet-{shallow}", f"resnet-{deep}"
    grad = "first_layer_grad_norm_final"
    ratio = runs[plain_d][grad] / runs[plain_s][grad]
    return {
        "plain_deeper_worse": runs[plain_d]["final_train_error"]
        > runs[plain_s]["final_train_error"],
        "plain_deeper_worse_share": higher_share(plain_d, plain_s),
        "resnet_deeper_better": runs[res_d]["final_train_error"] < runs[res_s]["final_train_error"],
        "resnet_deeper_better_share": higher_share(res_s, res_d),
        "resnet_beats_plain_deep": runs[res_d]["final_train_error"]
        < runs[plain_d]["final_train_error"],
        "plain_deep_over_shallow_grad": ratio,
        "vanished_share": VANISHED_SHARE,
        "plain_deep_gradient_vanished": ratio < VANISHED_SHARE,
    }


def verdict_by_budget(shallow: pd.DataFrame, deep: pd.DataFrame) -> pd.DataFrame:
    """For every logged step S of two logs of one constant-rate schedule (``train_network``),
    the stage's verdict had it run S steps: each network's final training error (the mean over
    the last quarter of the points logged up to S) and whether the deeper one's is lower."""
    rows = []
    for count in range(1, min(len(shallow), len(deep)) + 1):
        shallow_final = _final(shallow.iloc[:count], "train_error")
        deep_final = _final(deep.iloc[:count], "train_error")
        rows.append(
            {
                "step": int(shallow["step"].iloc[count - 1]),
                "shallow_final_train_error": shallow_final,
                "deep_final_train_error": deep_final,
                "deeper_better": deep_final < shallow_final,
            }
        )
    return pd.DataFrame(rows)


def budget_summary(verdicts: pd.DataFrame) -> dict[str, Any]:
    """The first budget at which the deeper network is ahead, and the budget from which it
    stays ahead to the end of the measurement (None where it never is / does not stay)."""
    ahead = verdicts["deeper_better"].to_numpy(dtype=bool)
    first = int(verdicts["step"].iloc[int(np.argmax(ahead))]) if ahead.any() else None
    behind = np.flatnonzero(~ahead)
    start = behind[-1] + 1 if len(behind) else 0  # the first point of the last run of "ahead"
    stays = int(verdicts["step"].iloc[start]) if start < len(ahead) else None
    return {
        "steps_measured": int(verdicts["step"].iloc[-1]),
        "first_ahead_step": first,
        "ahead_from_step": stays,
    }


def init_headline(summary: dict[str, Any]) -> dict[str, Any]:
    """metrics/theory/init.json: what someone compares across experiments (He et al. 2015,
    Fig. 3, and the scale at init); the rest is in plots/theory/init/summary.json."""
    training, propagation = summary["init_training"], summary["propagation"]
    return {
        "he_stalled": training["he"]["stalled"],
        "xavier_stalled": training["xavier"]["stalled"],
        "he_final_train_loss": training["he"]["final_train_loss"],
        "xavier_rms_ratio": propagation["xavier"]["rms_ratio_over_draws"],
        "he_rms_ratio": propagation["he"]["rms_ratio_over_draws"],
    }


def degradation_headline(summary: dict[str, Any]) -> dict[str, Any]:
    """metrics/theory/degradation.json: He et al. 2016 Fig. 6's three orderings, and the deep
    networks' final training errors."""
    deep = summary["deep"]
    return {
        "plain_deeper_worse": summary["plain_deeper_worse"],
        "resnet_deeper_better": summary["resnet_deeper_better"],
        "resnet_beats_plain_deep": summary["resnet_beats_plain_deep"],
        "plain_deep_train_error": summary["runs"][f"plain-{deep}"]["final_train_error"],
        "resnet_deep_train_error": summary["runs"][f"resnet-{deep}"]["final_train_error"],
    }


def gradcam_headline(summary: dict[str, Any]) -> dict[str, Any]:
    """metrics/theory/gradcam.json: the ReLU's share and the deletion test's difference."""
    return {
        "negative_position_share": summary["negative_position_share_mean"],
        "deletion_difference": summary["difference_mean"],
    }


def finite_or_none(tree: Any) -> Any:
    """``tree`` with every NaN or infinity replaced by None: JSON has no NaN (Typst and most
    readers refuse it), and "not defined" is what it means here (0/0 under zero init)."""
    if isinstance(tree, dict):
        return {key: finite_or_none(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [finite_or_none(value) for value in tree]
    if isinstance(tree, float) and not math.isfinite(tree):
        return None
    return tree
