"""Reading the official python-format archive, or its extracted ``cifar-10-batches-py/`` folder.

The archive is read in place: its members are streamed into memory, nothing is extracted to
disk. Every member is still checked as if it were to be extracted, and an archive with a member
that would land outside the extraction directory (absolute path, ``..``, link, device) is
refused outright, since the official archive has none and extracting it by hand would be unsafe.

The batches are pickles. Unpickling can run arbitrary code, so only the few numpy constructors
that a CIFAR-10 batch needs are allowed; anything else is refused as "not CIFAR-10".
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from mobilenet_study.data.cifar import CHANNELS, CLASSES, IMAGE_SIZE, SPLITS, Split
from mobilenet_study.data.errors import LOCAL_COPY_HINT, ArchiveError

BATCHES_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
MEMBERS = (*TRAIN_BATCHES, TEST_BATCH, META)
_PIXELS = CHANNELS * IMAGE_SIZE * IMAGE_SIZE

# What unpickling a batch (written by Python 2's cPickle or by Python 3) may construct.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        # Python 3 writes bytes as _codecs.encode(str, "latin1") under pickle protocol 2.
        ("_codecs", "encode"),
    }
)

_REFETCH_HINT = (
    "Get a fresh copy of the official cifar-10-python.tar.gz (setting `data.source` to its URL "
    "downloads one). " + LOCAL_COPY_HINT
)


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to construct {module}.{name}")
        return super().find_class(module, name)


def read_archive(path: str | Path) -> dict[str, Split]:
    """The train and test splits of a local ``cifar-10-python.tar.gz``."""
    path = Path(path)
    blobs: dict[str, bytes] = {}
    try:
        # "r:*" accepts the official gzip and an uncompressed tar alike.
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                _check_member(member, path)
                parent, _, base = member.name.rstrip("/").rpartition("/")
                if member.isfile() and parent == BATCHES_DIR and base in MEMBERS:
                    fh = tar.extractfile(member)
                    assert fh is not None  # a regular file always has contents
                    blobs[base] = fh.read()
    except (EOFError, zlib.error) as err:
        raise _truncated(path, err) from None
    except (tarfile.TarError, OSError) as err:
        if "unexpected end of data" in str(err):
            raise _truncated(path, err) from None
        raise ArchiveError(
            f"{path} is not a readable tar archive ({err}): it is corrupt or not the CIFAR-10 "
            f"python archive. {_REFETCH_HINT}"
        ) from None
    missing = [name for name in MEMBERS if name not in blobs]
    if missing:
        raise ArchiveError(
            f"{path} lacks {', '.join(f'{BATCHES_DIR}/{m}' for m in missing)}: it is incomplete "
            f"(truncated or corrupt part-way) or not the CIFAR-10 python archive. {_REFETCH_HINT}"
        )
    return _splits_from_blobs(blobs, where=str(path))


def read_batches_dir(path: str | Path) -> dict[str, Split]:
    """The train and test splits of an extracted ``cifar-10-batches-py/`` folder."""
    path = Path(path)
    missing = [name for name in MEMBERS if not (path / name).is_file()]
    if missing:
        raise ArchiveError(
            f"{path} looks like an extracted cifar-10-batches-py/ folder but lacks "
            f"{', '.join(missing)}. Extract the official archive again, or point `data.source` "
            f"at the archive itself. {LOCAL_COPY_HINT}"
        )
    blobs = {name: (path / name).read_bytes() for name in MEMBERS}
    return _splits_from_blobs(blobs, where=str(path))


def _truncated(path: Path, err: BaseException) -> ArchiveError:
    return ArchiveError(
        f"{path} is truncated ({err or 'compressed data ends early'}): the file ends before "
        f"the archive does, e.g. an interrupted copy or download. {_REFETCH_HINT}"
    )


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Refuse a member that extraction would place outside its directory, or a special file."""
    name = member.name
    parts = PurePosixPath(name).parts
    escapes = (
        name.startswith(("/", "\\"))
        or PureWindowsPath(name).drive != ""
        or ".." in parts
        or ".." in PureWindowsPath(name).parts
    )
    if escapes or member.issym() or member.islnk():
        raise ArchiveError(
            f"{archive}: archive member {name!r} would escape the extraction directory "
            "(absolute path, '..' or a link). The official CIFAR-10 archive has no such "
            f"member, so this archive was refused. {_REFETCH_HINT}"
        )
    if not (member.isfile() or member.isdir()):
        raise ArchiveError(
            f"{archive}: archive member {name!r} is a device, pipe or other special file; the "
            f"official CIFAR-10 archive has none, so this archive was refused. {_REFETCH_HINT}"
        )


def _unpickle(blob: bytes, name: str, where: str) -> dict[str, Any]:
    try:
        # encoding="bytes": the official batches are Python 2 pickles whose str became bytes.
        obj = _BatchUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as err:  # any failure to decode means the same thing to the user
        raise ArchiveError(
            f"{where}: {name} is not a readable CIFAR-10 batch ({type(err).__name__}: {err}). "
            f"{_REFETCH_HINT}"
        ) from None
    if not isinstance(obj, dict):
        raise ArchiveError(f"{where}: {name} holds a {type(obj).__name__}, not a batch dict.")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _batch(blob: bytes, name: str, where: str) -> Split:
    batch = _unpickle(blob, name, where)
    data, labels = batch.get("data"), batch.get("labels")
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != _PIXELS
        or not isinstance(labels, list)
        or len(labels) != data.shape[0]
    ):
        raise ArchiveError(
            f"{where}: {name} is not a CIFAR-10 batch (expected `data` uint8 (N, {_PIXELS}) "
            f"and N `labels`). {_REFETCH_HINT}"
        )
    label_array = np.asarray(labels, dtype=np.int64)
    if label_array.size and (label_array.min() < 0 or label_array.max() >= len(CLASSES)):
        raise ArchiveError(f"{where}: {name} has labels outside 0..9. {_REFETCH_HINT}")
    # Each row holds the red, green and blue 32x32 planes in turn; the study uses NHWC.
    images = data.reshape(-1, CHANNELS, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1)
    return Split(np.ascontiguousarray(images), label_array)


def _splits_from_blobs(blobs: dict[str, bytes], where: str) -> dict[str, Split]:
    meta = _unpickle(blobs[META], META, where)
    names = meta.get("label_names")
    decoded = (
        tuple(n.decode("latin1") if isinstance(n, bytes) else n for n in names)
        if isinstance(names, list)
        else None
    )
    if decoded != CLASSES:
        raise ArchiveError(
            f"{where}: {META} lists the classes {decoded}, not CIFAR-10's {CLASSES} in order: "
            f"this is not the CIFAR-10 archive (CIFAR-100 is a different file). {_REFETCH_HINT}"
        )
    train = [_batch(blobs[name], name, where) for name in TRAIN_BATCHES]
    test = _batch(blobs[TEST_BATCH], TEST_BATCH, where)
    splits = {
        "train": Split(
            np.concatenate([b.images for b in train]), np.concatenate([b.labels for b in train])
        ),
        "test": test,
    }
    assert tuple(splits) == SPLITS
    return splits
