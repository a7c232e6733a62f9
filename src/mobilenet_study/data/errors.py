"""What can go wrong while fetching and preparing CIFAR-10.

Each error is a :class:`~mobilenet_study.params.StudyError`, so a stage prints its one-paragraph
message and exits 2. Every message says what was wrong and what to do about it.
"""

from __future__ import annotations

from mobilenet_study.params import StudyError

# Appended to messages about an unusable source, so the user always learns the way out.
LOCAL_COPY_HINT = (
    "To use a local copy instead, set `data.source` in params.yaml to the official archive "
    "cifar-10-python.tar.gz, its extracted cifar-10-batches-py/ folder, or an image-folder "
    "mirror with train/<class>/ and test/<class>/ (e.g. "
    "`make quick DATA=../shared/data/cifar10-jpeg`)."
)


class DataError(StudyError):
    """The data source could not be turned into the prepared copy of CIFAR-10."""


class SourceNotFoundError(DataError):
    """``data.source`` names a local path that does not exist or is not a known layout."""


class DownloadError(DataError):
    """The archive could not be downloaded: no network, HTTP error, timeout, short body."""


class ChecksumError(DataError):
    """The archive's md5 is not the one ``data.md5`` expects."""


class ArchiveError(DataError):
    """The archive or extracted batches are truncated, corrupt, unsafe or not CIFAR-10."""


class ImageFolderError(DataError):
    """An image-folder mirror has a missing/unknown class folder, a bad image or an empty split."""


class PreparedDataError(DataError):
    """The prepared arrays or their metrics are missing or malformed (a later stage's input)."""
