"""The samples grid: a row of training images per class, so a glance shows the data is right."""

from __future__ import annotations

from typing import Any

import numpy as np

from mobilenet_study.data.cifar import CLASSES, IMAGE_SIZE, Split

GAP = 2  # white pixels between tiles


def samples_figure(train: Split, *, per_class: int = 10, title: str | None = None) -> Any:
    """A matplotlib Figure: the first ``per_class`` images of each class, one labelled row each.

    Drawn as one mosaic image rather than a grid of axes: the same picture, far faster.
    """
    from matplotlib.figure import Figure  # no pyplot: works without a display, nothing global

    step = IMAGE_SIZE + GAP
    mosaic = np.full((len(CLASSES) * step - GAP, per_class * step - GAP, 3), 255, dtype=np.uint8)
    for label in range(len(CLASSES)):
        # Classes with fewer images (tiny test sets) leave their remaining tiles blank.
        picks = np.flatnonzero(train.labels == label)[:per_class]
        for col, index in enumerate(picks):
            top, left = label * step, col * step
            mosaic[top : top + IMAGE_SIZE, left : left + IMAGE_SIZE] = train.images[index]
    fig = Figure(figsize=(1.2 + 0.55 * per_class, 0.55 * len(CLASSES) + 0.6))
    ax = fig.add_subplot()
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_yticks([label * step + IMAGE_SIZE / 2 for label in range(len(CLASSES))], CLASSES)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title or f"CIFAR-10 training samples (first {per_class} per class)")
    return fig
