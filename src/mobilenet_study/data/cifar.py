"""CIFAR-10's fixed facts: the class order, the image shape, and a split's arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The label order of the official archive (batches.meta `label_names`). Every label in the
# study is an index into this tuple; image-folder mirrors are mapped onto it by folder name.
CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# Where the official python-format archive lives and its published md5 (params.yaml's
# defaults; quoted here only in error messages that tell the user how to get back to them).
OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
# The kinds of copy `data.source` can name (detected by mobilenet_study.data.source), recorded in
# metrics/data.json and read back by the reports.
OFFICIAL_ARCHIVE = "official_archive"
EXTRACTED_BATCHES = "extracted_batches"
IMAGE_FOLDER = "image_folder"
IMAGE_SIZE = 32
CHANNELS = 3
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, CHANNELS)
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Split:
    """One split: ``images`` uint8 (N, 32, 32, 3) RGB and ``labels`` int64 (N,) in [0, 10)."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        # Checked here once, so every producer (archive, image folder, prepared file) and every
        # consumer can rely on the same shapes and dtypes.
        images, labels = self.images, self.labels
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
            raise ValueError(
                f"images must be uint8 (N, 32, 32, 3), not {images.dtype} {images.shape}"
            )
        if labels.dtype != np.int64 or labels.shape != (images.shape[0],):
            raise ValueError(
                f"labels must be int64 ({images.shape[0]},), got {labels.dtype} {labels.shape}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
            raise ValueError(f"labels must lie in [0, {len(CLASSES)})")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> dict[str, int]:
        """Images per class name, in CIFAR-10 label order."""
        counts = np.bincount(self.labels, minlength=len(CLASSES))
        return {name: int(n) for name, n in zip(CLASSES, counts, strict=True)}
