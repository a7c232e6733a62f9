"""Fetching the official archive over HTTP(S): progress bar, timeout, retries, md5 check.

The archive is streamed into a temporary file beside its final name and renamed only once its
md5 matches, so the final name never holds a partial or wrong download. A file already under
the final name is reused only if its md5 matches; anything else there is deleted first.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from mobilenet_study.data.cifar import OFFICIAL_MD5, OFFICIAL_URL
from mobilenet_study.data.errors import LOCAL_COPY_HINT, ChecksumError, DataError, DownloadError
from mobilenet_study.files import atomic_path

CHUNK_BYTES = 1 << 20
# Seconds to wait before retry k (k = 1, 2, ...) is k times this: a brief pause lets a flaky
# connection recover without making a genuinely offline run wait long.
RETRY_BACKOFF_S = 1.0


# Errors writing the temporary file, as opposed to the connection failing.
_LOCAL_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM")
    if hasattr(errno, name)
)


class _TransientError(DownloadError):
    """A failure that another attempt may not repeat (network down, timeout, short body)."""


def file_md5(path: str | Path) -> str:
    """The md5 hex digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_archive(
    url: str,
    dest: str | Path,
    *,
    md5: str,
    timeout_s: float,
    retries: int,
    backoff_s: float = RETRY_BACKOFF_S,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` (verified against ``md5``) and return ``dest``.

    ``timeout_s`` bounds each wait for the server (connecting, or the next chunk), not the
    whole transfer. Network errors, timeouts, 5xx answers and short bodies are retried up to
    ``retries`` more times; a 4xx answer or an md5 mismatch is final.
    """
    dest = Path(dest)
    # Temporary files of a run that was killed outright (atomic_path's naming): never reused.
    for leftover in dest.parent.glob(f".{dest.stem}.*{dest.suffix}"):
        leftover.unlink(missing_ok=True)
    if dest.is_file():
        if file_md5(dest) == md5:
            return dest
        # A leftover from another md5 setting or a tampered copy: never reused.
        dest.unlink()
    attempts = retries + 1
    for attempt in range(1, attempts + 1):
        try:
            with atomic_path(dest) as tmp:
                got = _download_once(url, tmp, timeout_s=timeout_s, progress=progress)
                if got != md5:
                    raise ChecksumError(
                        f"Downloaded {url}, but its md5 is {got}, not the {md5} that `data.md5` "
                        "expects, so it was discarded. The server sent a different or corrupted "
                        "file: check `data.source` and `data.md5` in params.yaml (the official "
                        f"archive's md5 is {OFFICIAL_MD5}). {LOCAL_COPY_HINT}"
                    )
            return dest
        except _TransientError as err:
            if attempt == attempts:
                tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
                raise DownloadError(
                    f"{err} Gave up after {tries} (`data.retries` is {retries}). {LOCAL_COPY_HINT}"
                ) from None
            time.sleep(backoff_s * attempt)
    raise AssertionError("unreachable")  # the loop returns or raises


def _download_once(url: str, tmp: Path, *, timeout_s: float, progress: bool) -> str:
    """One attempt: stream ``url`` into ``tmp``, returning the md5 of what arrived."""
    request = urllib.request.Request(url, headers={"User-Agent": "mobilenet-study"})
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            with (
                open(tmp, "wb") as out,
                tqdm(
                    total=expected,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=url.rsplit("/", 1)[-1],
                    # None: show the bar only on a terminal, not in captured logs.
                    disable=None if progress else True,
                ) as bar,
            ):
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        message = f"Downloading {url} failed: the server answered HTTP {err.code} {err.reason}. "
        if err.code >= 500 or err.code == 429:
            raise _TransientError(message.rstrip()) from None
        raise DownloadError(
            f"{message}Check the URL in `data.source` (the official archive is {OFFICIAL_URL}). "
            + LOCAL_COPY_HINT
        ) from None
    except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = err.reason if isinstance(err, urllib.error.URLError) else err
        if isinstance(reason, OSError) and reason.errno in _LOCAL_ERRNOS:
            # Our side, not the network's: retrying would not help.
            raise DataError(
                f"Cannot write the download of {url} to {tmp.parent} ({reason}). Free space "
                "or fix permissions there, then rerun."
            ) from None
        if isinstance(reason, TimeoutError):
            raise _TransientError(
                f"Downloading {url} timed out: the server sent nothing for {timeout_s:g} s "
                f"(after {received} bytes). On a slow network raise `data.timeout_s` or "
                "`data.retries` in params.yaml."
            ) from None
        if received:
            raise _TransientError(
                f"Downloading {url} broke off after {received} bytes ({reason}); nothing was "
                "kept, so a rerun starts afresh."
            ) from None
        raise _TransientError(
            f"Could not reach {url} ({reason}): this machine may have no network access, or "
            "the host is down."
        ) from None
    if expected is not None and received != expected:
        raise _TransientError(
            f"Downloading {url} ended after {received} of {expected} bytes (the connection "
            "closed early); nothing was kept, so a rerun starts afresh."
        )
    return digest.hexdigest()
