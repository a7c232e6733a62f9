"""Preparing CIFAR-10 from ``data.source`` (stage `download`): fetch or read it, whatever its
kind, and compute the statistics that :mod:`.prepared` saves beside the arrays."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from mobilenet_study.data.archive import read_archive, read_batches_dir
from mobilenet_study.data.cifar import EXTRACTED_BATCHES, IMAGE_FOLDER, OFFICIAL_ARCHIVE, SPLITS
from mobilenet_study.data.download import fetch_archive, file_md5
from mobilenet_study.data.errors import ChecksumError, DataError
from mobilenet_study.data.image_folder import read_image_folder
from mobilenet_study.data.prepared import RAW_FORMAT, PreparedData, channel_stats, content_sha256
from mobilenet_study.data.source import DataParams, detect_source

# Where a downloaded archive is kept between runs (git-ignored, not a DVC output): a rerun
# with the same md5 reuses it instead of fetching 163 MiB again.


def prepare(
    params: DataParams,
    *,
    root: str | Path,
    download_dir: str | Path,
    workers: int | None = None,
    progress: bool = True,
) -> PreparedData:
    """Fetch or read CIFAR-10 from ``params.source`` and compute its statistics.

    ``root`` resolves relative local paths; a URL is downloaded into ``download_dir``.
    ``workers`` decoding processes read an image folder (default: the usable CPUs).
    """
    source = detect_source(params.source, root)
    if source.kind == OFFICIAL_ARCHIVE:
        if source.is_url:
            url = str(source.location)
            name = Path(urlparse(url).path).name or "cifar-10-python.tar.gz"
            archive = fetch_archive(
                url,
                Path(download_dir) / name,
                md5=params.md5,
                timeout_s=params.timeout_s,
                retries=params.retries,
                progress=progress,
            )
        else:
            archive = Path(source.location)
            _check_local_md5(archive, params.md5)
        splits, image_format = read_archive(archive), RAW_FORMAT
    elif source.kind == EXTRACTED_BATCHES:
        splits, image_format = read_batches_dir(source.location), RAW_FORMAT
    else:
        assert source.kind == IMAGE_FOLDER
        splits, image_format = read_image_folder(source.location, workers=workers)
    for split in SPLITS:
        if len(splits[split]) == 0:
            raise DataError(
                f"{source.location}: the {split} split has no images. A usable source has both "
                "a train and a test split; point `data.source` at a complete copy of CIFAR-10."
            )
    mean, std = channel_stats(splits["train"].images)
    return PreparedData(source, image_format, splits, mean, std, content_sha256(splits))


def _check_local_md5(archive: Path, md5: str) -> None:
    got = file_md5(archive)
    if got != md5:
        raise ChecksumError(
            f"{archive} has md5 {got}, not the {md5} that `data.md5` expects: it is not the "
            "official cifar-10-python.tar.gz, or it is damaged (truncated copy?). Get a fresh "
            f"copy; or, if this archive is meant to differ, set `data.md5: {got}`."
        )
