"""Reading an image-folder mirror: ``train/<class>/*`` and ``test/<class>/*`` PNG or JPEG files.

Class folders are matched by name to :data:`CLASSES`; within a class, files are taken in name
order, so the prepared arrays have a stable order. Decoding 60,000 small files is the cost, so it
runs in a process pool, each worker decoding a contiguous chunk into one preallocated buffer.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from mobilenet_study.data.cifar import CHANNELS, CLASSES, IMAGE_SHAPE, IMAGE_SIZE, SPLITS, Split
from mobilenet_study.data.errors import ImageFolderError
from mobilenet_study.stage import usable_cpus

# Files taken as images; PIL checks the content, and the format recorded is what it really is.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PIL_FORMATS = ("PNG", "JPEG")
# Below this many images a pool costs more to start than it saves.
PARALLEL_MIN_IMAGES = 4096
_IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE * CHANNELS
_LAYOUT = (
    "An image-folder mirror holds train/<class>/ and test/<class>/ with PNG or JPEG files, one "
    f"folder per CIFAR-10 class: {', '.join(CLASSES)}."
)


def list_split(root: Path, split: str) -> tuple[list[str], np.ndarray]:
    """The image files of one split in stable order (class, then file name) and their labels."""
    split_dir = root / split
    if not split_dir.is_dir():
        raise ImageFolderError(
            f"{root} has no {split}/ folder, so the {split} split is missing. {_LAYOUT}"
        )
    folders = {e.name for e in os.scandir(split_dir) if e.is_dir() and not _hidden(e.name)}
    unknown = sorted(folders - set(CLASSES))
    missing = [name for name in CLASSES if name not in folders]
    if not folders:
        raise ImageFolderError(f"{split_dir} is empty: the {split} split has no images. {_LAYOUT}")
    if unknown or missing:
        what = []
        if unknown:
            what.append(f"unknown class folder(s) {', '.join(unknown)}")
        if missing:
            what.append(f"missing class folder(s) {', '.join(missing)}")
        raise ImageFolderError(
            f"{split_dir} has {' and '.join(what)}. Rename or add folders so that there is "
            f"exactly one per class (names are matched exactly, lower case). {_LAYOUT}"
        )
    paths: list[str] = []
    labels: list[int] = []
    empty: list[str] = []
    for label, name in enumerate(CLASSES):
        entries = sorted(
            (e for e in os.scandir(split_dir / name) if not _hidden(e.name)), key=lambda e: e.name
        )
        strays = [e.name for e in entries if not (e.is_file() and _is_image_name(e.name))]
        if strays:
            shown = ", ".join(strays[:5]) + (", ..." if len(strays) > 5 else "")
            raise ImageFolderError(
                f"{split_dir / name} holds {len(strays)} entries that are not PNG or JPEG files "
                f"({shown}). Remove them, or convert them to .png/.jpg images. {_LAYOUT}"
            )
        if not entries:
            empty.append(name)
        paths.extend(e.path for e in entries)
        labels.extend([label] * len(entries))
    if not paths:
        raise ImageFolderError(
            f"{split_dir} has class folders but no images: the {split} split is empty. {_LAYOUT}"
        )
    if empty:
        raise ImageFolderError(
            f"{split_dir} has empty class folder(s) {', '.join(empty)}: every class needs images "
            f"in every split. {_LAYOUT}"
        )
    return paths, np.asarray(labels, dtype=np.int64)


def read_image_folder(
    root: str | Path, *, workers: int | None = None
) -> tuple[dict[str, Split], str]:
    """Both splits of the mirror at ``root``, and the image format found ("jpeg", "png", ...)."""
    root = Path(root)
    listed = {split: list_split(root, split) for split in SPLITS}
    # One pool for both splits: its start-up is paid once.
    all_paths = [p for split in SPLITS for p in listed[split][0]]
    images, formats = decode_images(all_paths, workers=workers)
    splits: dict[str, Split] = {}
    start = 0
    for split in SPLITS:
        paths, labels = listed[split]
        splits[split] = Split(images[start : start + len(paths)], labels)
        start += len(paths)
    return splits, "+".join(sorted(formats))


def decode_images(paths: list[str], *, workers: int | None = None) -> tuple[np.ndarray, set[str]]:
    """Decode 32x32 images into uint8 (N, 32, 32, 3) RGB, and the set of formats seen."""
    if not paths:
        return np.empty((0, *IMAGE_SHAPE), dtype=np.uint8), set()
    if workers is None:
        workers = usable_cpus() if len(paths) >= PARALLEL_MIN_IMAGES else 1
    if workers <= 1:
        chunks = [paths]
        results = [_decode_chunk(paths)]
    else:
        # A few chunks per worker keeps both busy to the end without much per-task overhead.
        n_chunks = min(len(paths), workers * 4)
        bounds = np.linspace(0, len(paths), n_chunks + 1).astype(int)
        chunks = [paths[a:b] for a, b in itertools.pairwise(bounds.tolist())]
        # spawn: workers start clean, whatever threads (servers, progress bars) the parent runs.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            results = list(pool.map(_decode_chunk, chunks))
    formats: set[str] = set()
    for chunk, (_, chunk_formats, error) in zip(chunks, results, strict=True):
        if error is not None:
            index, reason = error
            raise ImageFolderError(
                f"{chunk[index]} {reason}. Every image must be a readable 32x32 PNG or JPEG: "
                "replace or remove this file and rerun."
            )
        formats |= chunk_formats
    images = results[0][0] if len(results) == 1 else np.concatenate([r[0] for r in results])
    return images, formats


def _decode_chunk(paths: list[str]) -> tuple[np.ndarray, set[str], tuple[int, str] | None]:
    """Decode a chunk; on the first bad file stop and return (its index, what is wrong)."""
    from PIL import Image  # imported here so that spawned workers load it themselves

    buf = bytearray(len(paths) * _IMAGE_BYTES)
    formats: set[str] = set()
    for i, path in enumerate(paths):
        try:
            with Image.open(path, formats=PIL_FORMATS) as im:
                if im.size != (IMAGE_SIZE, IMAGE_SIZE):
                    width, height = im.size
                    return _empty(), formats, (i, f"is {width}x{height} pixels, not 32x32")
                formats.add(im.format.lower())
                # Grayscale or palette PNGs become RGB; tobytes() is the fastest way out of PIL.
                rgb = im if im.mode == "RGB" else im.convert("RGB")
                buf[i * _IMAGE_BYTES : (i + 1) * _IMAGE_BYTES] = rgb.tobytes()
        except Exception as err:  # whatever PIL raises, the file is unusable
            reason = f"cannot be read as an image ({type(err).__name__}: {err})"
            return _empty(), formats, (i, reason)
    images = np.frombuffer(buf, dtype=np.uint8).reshape(len(paths), *IMAGE_SHAPE)
    return images, formats, None


def _empty() -> np.ndarray:
    return np.empty((0, *IMAGE_SHAPE), dtype=np.uint8)


def _hidden(name: str) -> bool:
    # .DS_Store, ._resource forks, .ipynb_checkpoints: never part of a dataset.
    return name.startswith(".")


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)
