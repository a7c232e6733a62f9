"""Writing stage outputs atomically: a file appears under its final name complete, or not at all."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once: reading it means setting it, and a thread writing a file (a profile's live
# attempt) must not leave a subprocess started meanwhile with umask 0.
UMASK = _umask()


def _publish_mode(path: Path, *, directory: bool) -> None:
    """mkstemp/mkdtemp create private (0600/0700) entries; give outputs the usual mode."""
    os.chmod(path, (0o777 if directory else 0o666) & ~UMASK)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    The temporary name keeps the final suffix so that writers which infer the format from it
    (matplotlib, numpy) behave. On any exception the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _publish_mode(tmp, directory=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; swap it in for ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield tmp
        _publish_mode(tmp, directory=True)
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old."))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_outputs(*paths: str | Path) -> None:
    """Delete earlier outputs (files or folders), so none outlives a failed rerun."""
    for path in map(Path, paths):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def write_text(path: str | Path, content: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(content)


def write_table(path: str | Path, frame: Any) -> None:
    """Write a pandas DataFrame as CSV (no index): the format dvc.yaml's plots read."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON (NaN is refused: DVC's metrics reader rejects it)."""
    write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def pyplot() -> Any:
    """matplotlib.pyplot on the headless Agg backend (stages run without a display)."""
    # Imported on first use: the backend must be chosen before pyplot loads, and stages that
    # draw nothing do not pay for matplotlib.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, *, dpi: int = 120) -> None:
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt  # loaded already: ``fig`` came from pyplot()

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
