"""The prepared copy of CIFAR-10 that every later stage reads, and the statistics beside it.

``data/prepared/{train,test}.npz`` hold ``images`` uint8 (N, 32, 32, 3) RGB and ``labels``
int64 (N,), uncompressed so that loading is a plain read. ``data/prepared/summary.json`` holds
what is computed from those arrays alone: images per class, a content hash, and the
per-channel mean and std of the training images that training normalises with. The folder is
the data's identity: the same pixels from another path or source kind give the same folder,
so training stages (which depend on it alone) are not rerun.

``metrics/data.json`` records the provenance for people and reports: where the data came from,
its kind and image format, whether it is lossy, and the images per split.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from mobilenet_study.data.cifar import CHANNELS, IMAGE_FOLDER, SPLITS, Split
from mobilenet_study.data.errors import PreparedDataError
from mobilenet_study.files import atomic_dir
from mobilenet_study.layout import DATA_METRICS, PREPARED

if TYPE_CHECKING:  # the type only: reading prepared data needs none of the source readers
    from mobilenet_study.data.source import Source

T = TypeVar("T")
# The download stage's outputs, as dvc.yaml names them (paths relative to the repository root).
SUMMARY_NAME = "summary.json"  # inside the prepared folder
# What the official archive's arrays are: lossless, the reference copy of CIFAR-10.
RAW_FORMAT = "raw"
LOSSY_FORMATS = frozenset({"jpeg"})
_HASH_CHUNK = 1 << 24


@dataclass(frozen=True)
class PreparedData:
    """Both splits, where they came from, and the statistics recorded in metrics/data.json."""

    source: Source
    image_format: str
    splits: Mapping[str, Split]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    content_sha256: str

    def metrics(self) -> dict[str, Any]:
        """The contents of metrics/data.json: provenance, and the images per split."""
        formats = set(self.image_format.split("+"))
        return {
            "source": self.source.given,
            "kind": self.source.kind,
            "image_format": self.image_format,
            "lossy": bool(formats & LOSSY_FORMATS),
            "images": {split: len(self.splits[split]) for split in SPLITS},
        }

    def summary(self) -> dict[str, Any]:
        """The contents of data/prepared/summary.json: what the arrays alone determine."""
        return {
            "images": {split: len(self.splits[split]) for split in SPLITS},
            "per_class": {split: self.splits[split].class_counts() for split in SPLITS},
            # In [0, 1] units (images / 255), RGB order.
            "normalization": {"mean": list(self.mean), "std": list(self.std)},
            "content_sha256": self.content_sha256,
        }


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 NHWC ``images``, in [0, 1] units.

    Computed from exact per-channel histograms (bincount is several times faster than summing
    converted chunks), so the result does not depend on chunking or float summation order.
    """
    pixels = images.reshape(-1, CHANNELS)
    histogram = np.zeros((CHANNELS, 256), dtype=np.int64)
    step = 1 << 20
    for start in range(0, len(pixels), step):
        chunk = pixels[start : start + step]
        for channel in range(CHANNELS):
            histogram[channel] += np.bincount(chunk[:, channel], minlength=256)
    values = np.arange(256, dtype=np.int64)
    n = len(pixels)
    # Python ints from here on: sum(count · v²) reaches ~1e13 for CIFAR-10, exact either way.
    means = [int(h @ values) / n for h in histogram]
    variances = [
        max(int(h @ (values * values)) / n - m * m, 0.0)
        for h, m in zip(histogram, means, strict=True)
    ]
    return tuple(m / 255.0 for m in means), tuple(math.sqrt(v) / 255.0 for v in variances)


def content_sha256(splits: Mapping[str, Split]) -> str:
    """A SHA-256 over both splits' shapes, images and labels: equal iff the data is equal."""
    digest = hashlib.sha256()
    for split in SPLITS:
        images, labels = splits[split].images, splits[split].labels
        digest.update(f"{split}:{images.shape}:{labels.shape};".encode())
        for array in (images, labels):
            flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
            for start in range(0, len(flat), _HASH_CHUNK):
                digest.update(flat[start : start + _HASH_CHUNK])
    return digest.hexdigest()


def save_prepared(data: PreparedData, prepared_dir: str | Path) -> None:
    """Write ``<split>.npz`` for each split and ``summary.json``; the folder appears complete or
    not at all."""
    with atomic_dir(prepared_dir) as tmp:
        for split in SPLITS:
            arrays = data.splits[split]
            _save_npz(tmp / f"{split}.npz", images=arrays.images, labels=arrays.labels)
        (tmp / SUMMARY_NAME).write_text(json.dumps(data.summary(), indent=2) + "\n")


# Every member of a prepared .npz carries this date, not the time of writing.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Like ``np.savez`` (uncompressed: loading is a plain read), but byte-for-byte the same for
    the same arrays: ``np.savez`` stamps each zip member with the current time, so every
    preparation of the same data would hash differently, and DVC would retrain every run (and
    no run-cache entry would match across machines)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            with archive.open(member, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.ascontiguousarray(array), allow_pickle=False)


def _not_prepared(path: Path) -> PreparedDataError:
    return PreparedDataError(
        f"{path} does not exist: prepare the data first with `dvc repro download`."
    )


def load_split(prepared_dir: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of a prepared split: uint8 (N, 32, 32, 3) and int64 (N,)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    path = Path(prepared_dir) / f"{split}.npz"
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"]
        return Split(images, labels).images, labels
    except FileNotFoundError:
        raise _not_prepared(path) from None
    except (KeyError, ValueError, OSError) as err:
        raise PreparedDataError(
            f"{path} is not a prepared CIFAR-10 split ({err}): rerun `dvc repro download`."
        ) from None


@dataclass(frozen=True)
class PreparedStats:
    """What training needs from data/prepared/summary.json: normalisation and identity."""

    # Per channel, RGB, in [0, 1] units (of images / 255).
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    content_hash: str


REDO = "rerun `dvc repro download`."


def _read_stage_json(path: Path, parse: Callable[[dict[str, Any]], T]) -> T:
    """``parse`` applied to a JSON file the download stage wrote; a missing file or one of
    another shape is a PreparedDataError that says to rerun the stage."""
    try:
        return parse(json.loads(path.read_text()))
    except FileNotFoundError:
        raise _not_prepared(path) from None
    except (ValueError, KeyError, TypeError) as err:
        raise PreparedDataError(
            f"{path} is not the download stage's summary ({type(err).__name__}: {err}): {REDO}"
        ) from None


def read_stats(prepared_dir: str | Path = PREPARED) -> PreparedStats:
    """Read and check data/prepared/summary.json as the download stage wrote it."""
    path = Path(prepared_dir) / SUMMARY_NAME

    def parse(raw: dict[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...], Any]:
        norm = raw["normalization"]
        mean, std = (tuple(float(x) for x in norm[key]) for key in ("mean", "std"))
        return mean, std, raw["content_sha256"]

    mean, std, content_hash = _read_stage_json(path, parse)
    if (
        len(mean) != CHANNELS
        or len(std) != CHANNELS
        or not all(math.isfinite(x) for x in (*mean, *std))
        or min(std) <= 0
    ):
        raise PreparedDataError(
            f"{path}: normalization must be 3 finite means and 3 positive stds, found mean "
            f"{mean}, std {std}: {REDO}"
        )
    if not isinstance(content_hash, str):
        raise PreparedDataError(f"{path}: content_sha256 malformed: {REDO}")
    return PreparedStats(
        mean=(mean[0], mean[1], mean[2]), std=(std[0], std[1], std[2]), content_hash=content_hash
    )


@dataclass(frozen=True)
class DataSummary:
    """Where the data came from (metrics/data.json): how reports and figures name it."""

    source: str
    source_kind: str
    image_format: str
    lossy: bool

    @property
    def label(self) -> str:
        """How reports and figures name the data: results on a lossy copy must say so."""
        if self.lossy:
            formats = self.image_format.split("+")
            return "JPEG mirror" if "jpeg" in formats else f"lossy {self.image_format} copy"
        if self.source_kind == IMAGE_FOLDER:
            return f"{self.image_format} image-folder mirror (lossless)"
        return "official archive"


def read_summary(metrics_path: str | Path = DATA_METRICS) -> DataSummary:
    """Read and check metrics/data.json as the download stage wrote it."""
    path = Path(metrics_path)

    def parse(raw: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        return {k: raw[k] for k in ("source", "kind", "image_format")}, raw["lossy"]

    fields, lossy = _read_stage_json(path, parse)
    if not all(isinstance(v, str) for v in fields.values()) or not isinstance(lossy, bool):
        raise PreparedDataError(f"{path}: source, kind or image_format malformed: {REDO}")
    return DataSummary(
        source=fields["source"],
        source_kind=fields["kind"],
        image_format=fields["image_format"],
        lossy=lossy,
    )
