"""CIFAR-10 for the study: fetch, verify and prepare it once; later stages load the result.

Sources (``data.source`` in params.yaml, the kind detected): the official python archive by
URL or local path, its extracted ``cifar-10-batches-py/`` folder, or an image-folder mirror.
The output is ``data/prepared/{train,test}.npz`` and ``summary.json`` beside them, plus
``metrics/data.json``; later stages use :func:`load_split`, :func:`read_stats` and
:func:`read_summary`, never the source.
"""

from mobilenet_study.data.archive import read_archive, read_batches_dir
from mobilenet_study.data.cifar import CLASSES, IMAGE_SHAPE, SPLITS, Split
from mobilenet_study.data.download import fetch_archive, file_md5
from mobilenet_study.data.errors import (
    ArchiveError,
    ChecksumError,
    DataError,
    DownloadError,
    ImageFolderError,
    PreparedDataError,
    SourceNotFoundError,
)
from mobilenet_study.data.figures import samples_figure
from mobilenet_study.data.image_folder import read_image_folder
from mobilenet_study.data.prepared import (
    DOWNLOAD_DIR,
    METRICS_FILE,
    PLOTS_DIR,
    PREPARED_DIR,
    DataSummary,
    PreparedData,
    PreparedStats,
    channel_stats,
    content_sha256,
    load_split,
    prepare,
    read_stats,
    read_summary,
    save_prepared,
)
from mobilenet_study.data.source import (
    EXTRACTED_BATCHES,
    IMAGE_FOLDER,
    OFFICIAL_ARCHIVE,
    DataParams,
    Source,
    detect_source,
)

__all__ = [
    "CLASSES",
    "DOWNLOAD_DIR",
    "EXTRACTED_BATCHES",
    "IMAGE_FOLDER",
    "IMAGE_SHAPE",
    "METRICS_FILE",
    "OFFICIAL_ARCHIVE",
    "PLOTS_DIR",
    "PREPARED_DIR",
    "SPLITS",
    "ArchiveError",
    "ChecksumError",
    "DataError",
    "DataParams",
    "DataSummary",
    "DownloadError",
    "ImageFolderError",
    "PreparedData",
    "PreparedDataError",
    "PreparedStats",
    "Source",
    "SourceNotFoundError",
    "Split",
    "channel_stats",
    "content_sha256",
    "detect_source",
    "fetch_archive",
    "file_md5",
    "load_split",
    "prepare",
    "read_archive",
    "read_batches_dir",
    "read_image_folder",
    "read_stats",
    "read_summary",
    "samples_figure",
    "save_prepared",
]
