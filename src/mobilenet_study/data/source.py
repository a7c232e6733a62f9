"""Where CIFAR-10 comes from: the ``data`` params and detecting what kind of source they name.

``data.source`` is a URL of the official archive, or a local path to that archive, to its
extracted ``cifar-10-batches-py/`` folder, or to an image-folder mirror. The kind is detected
from what is there, never configured; relative paths are resolved against the repository root.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mobilenet_study import params as p
from mobilenet_study.data.archive import BATCHES_DIR, MEMBERS
from mobilenet_study.data.cifar import (
    EXTRACTED_BATCHES,
    IMAGE_FOLDER,
    OFFICIAL_ARCHIVE,
    OFFICIAL_URL,
    SPLITS,
)
from mobilenet_study.data.errors import LOCAL_COPY_HINT, SourceNotFoundError

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
MAX_TIMEOUT_S = 3600.0
MAX_RETRIES = 10


def is_url(source: str) -> bool:
    """Whether ``source`` is written as a URL (``scheme://...``) rather than a path."""
    return _URL.match(source) is not None


@dataclass(frozen=True)
class DataParams(p.Section):
    """params.yaml ``data:``, validated."""

    SECTION = "data"

    source: str
    md5: str
    timeout_s: float = p.setting(low=0.0, high=MAX_TIMEOUT_S, low_inclusive=False)
    retries: int = p.setting(low=0, high=MAX_RETRIES)

    def checked(self, params: Mapping[str, Any], key: str) -> DataParams:
        """The source stripped and refused with a scheme other than http(s); the checksum
        stripped, checked to be a hex digest and lower-cased."""
        source = self.source.strip()
        scheme = _URL.match(source)
        if scheme and scheme.group(1).lower() not in ("http", "https"):
            raise p.ParamError(
                f"{key}.source",
                source,
                "allowed: an http(s) URL of the official archive, or a local path (no file:// "
                "or other schemes: write the path itself)",
            )
        md5 = self.md5.strip()
        if not _MD5.match(md5):
            raise p.ParamError(f"{key}.md5", md5, "allowed: an md5 hex digest of 32 characters")
        return replace(self, source=source, md5=md5.lower())


@dataclass(frozen=True)
class Source:
    """A detected source: what ``data.source`` said, what kind it is, and where it lies."""

    given: str
    kind: str
    # The URL for a download, else the resolved local path (the batches folder itself when
    # ``data.source`` named the folder it was extracted into).
    location: str | Path

    @property
    def is_url(self) -> bool:
        return isinstance(self.location, str)


def detect_source(source: str, root: str | Path) -> Source:
    """Classify ``source``; a relative path is taken relative to ``root`` (the repository)."""
    if is_url(source):
        return Source(source, OFFICIAL_ARCHIVE, source)
    path = Path(source).expanduser()
    if not path.is_absolute():
        path = Path(root) / path
    path = path.resolve()
    if not path.exists():
        raise SourceNotFoundError(
            f"`data.source` is {source!r}, which resolves to {path}, but that path does not "
            f"exist (relative paths are taken from the repository root, {Path(root).resolve()}). "
            f"Fix the path, or set it to the official URL {OFFICIAL_URL} where there is "
            f"network access. {LOCAL_COPY_HINT}"
        )
    if path.is_file():
        # Any file is taken as the archive; reading it says clearly if it is not one.
        return Source(source, OFFICIAL_ARCHIVE, path)
    if any((path / name).is_file() for name in MEMBERS):
        return Source(source, EXTRACTED_BATCHES, path)
    if (path / BATCHES_DIR).is_dir():
        return Source(source, EXTRACTED_BATCHES, path / BATCHES_DIR)
    if any((path / split).is_dir() for split in SPLITS):
        return Source(source, IMAGE_FOLDER, path)
    raise SourceNotFoundError(
        f"`data.source` is {source!r} ({path}), a folder holding neither CIFAR-10 batches "
        f"({', '.join(MEMBERS)}), nor a {BATCHES_DIR}/ folder, nor train/ and test/ image "
        f"folders. {LOCAL_COPY_HINT}"
    )
