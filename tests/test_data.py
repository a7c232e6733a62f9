"""The download stage: every source kind, every failure, and the prepared outputs.

No network: the archive is served from 127.0.0.1 by a small http.server in a thread, built in
the exact official format from a few random images per class.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from mobilenet_study.data.cifar import (
    CLASSES,
    EXTRACTED_BATCHES,
    IMAGE_FOLDER,
    OFFICIAL_ARCHIVE,
    Split,
)
from mobilenet_study.data.download import fetch_archive
from mobilenet_study.data.errors import (
    ArchiveError,
    ChecksumError,
    DownloadError,
    ImageFolderError,
    PreparedDataError,
    SourceNotFoundError,
)
from mobilenet_study.data.figures import samples_figure
from mobilenet_study.data.image_folder import read_image_folder
from mobilenet_study.data.prepare import prepare
from mobilenet_study.data.prepared import (
    load_split,
    read_stats,
    read_summary,
    save_prepared,
)
from mobilenet_study.data.source import DataParams
from mobilenet_study.files import save_figure, write_json
from mobilenet_study.params import ParamError

REPO_ROOT = Path(__file__).resolve().parents[1]
# CI clones the repository with ../shared beside it.
SHARED_MIRROR = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg"
ARCHIVE_NAME = "cifar-10-python.tar.gz"


# --- building sources in the official formats ------------------------------------------------


def make_splits(train_per_class: int = 2, test_per_class: int = 1, seed: int = 0) -> dict:
    """Random images, classes interleaved like the official batches."""
    rng = np.random.default_rng(seed)
    splits = {}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = np.tile(np.arange(len(CLASSES), dtype=np.int64), per_class)
        images = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
        splits[split] = Split(images, labels)
    return splits


def _batch_pickle(obj: dict) -> bytes:
    # Protocol 2 with bytes keys, and numpy's pre-2.0 module name, as in the official pickles.
    blob = pickle.dumps(obj, protocol=2)
    return blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def batch_blobs(splits: dict, label_names: tuple[str, ...] = CLASSES) -> dict[str, bytes]:
    """The official members: data_batch_1..5, test_batch, batches.meta."""

    def batch(split: Split, index: np.ndarray, name: str) -> bytes:
        # Each row: the red, green and blue 32x32 planes, row-major.
        data = split.images[index].transpose(0, 3, 1, 2).reshape(len(index), 3072)
        return _batch_pickle(
            {
                b"batch_label": name.encode(),
                b"labels": [int(x) for x in split.labels[index]],
                b"data": np.ascontiguousarray(data),
                b"filenames": [f"{i}.png".encode() for i in index],
            }
        )

    train = splits["train"]
    parts = np.array_split(np.arange(len(train)), 5)
    blobs = {
        f"data_batch_{i + 1}": batch(train, part, f"batch {i + 1}") for i, part in enumerate(parts)
    }
    blobs["test_batch"] = batch(splits["test"], np.arange(len(splits["test"])), "test")
    blobs["batches.meta"] = _batch_pickle(
        {
            b"label_names": [n.encode() for n in label_names],
            b"num_cases_per_batch": len(parts[0]),
            b"num_vis": 3072,
        }
    )
    return blobs


def write_archive(path: Path, blobs: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        top = tarfile.TarInfo("cifar-10-batches-py")
        top.type = tarfile.DIRTYPE
        tar.addfile(top)
        for name, blob in blobs.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


def write_image_folder(root: Path, splits: dict, suffix: str = ".png") -> Path:
    for split, data in splits.items():
        for i, (image, label) in enumerate(zip(data.images, data.labels, strict=True)):
            folder = root / split / CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i:04d}{suffix}")
    return root


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def params_for(source: str | Path, md5: str = "0" * 32, **overrides) -> DataParams:
    values = {"source": str(source), "md5": md5, "timeout_s": 5.0, "retries": 0, **overrides}
    return DataParams(**values)


def assert_same(prepared: dict, expected: dict) -> None:
    for split in ("train", "test"):
        np.testing.assert_array_equal(prepared[split].images, expected[split].images)
        np.testing.assert_array_equal(prepared[split].labels, expected[split].labels)


def sort_by_class(split: Split) -> Split:
    """The order an image folder yields: class by class, files in name order (= index order)."""
    order = np.argsort(split.labels, kind="stable")
    return Split(split.images[order], split.labels[order])


@pytest.fixture(scope="module")
def splits() -> dict:
    return make_splits()


@pytest.fixture
def archive(tmp_path: Path, splits: dict) -> Path:
    return write_archive(tmp_path / ARCHIVE_NAME, batch_blobs(splits))


@pytest.fixture
def folder(tmp_path: Path, splits: dict) -> Path:
    return write_image_folder(tmp_path / "mirror", splits)


# --- a local HTTP server --------------------------------------------------------------------


@dataclass
class Server:
    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """Routes: /<name> serves files[name]; /hang never answers; /truncated/<name> sends half
    of files[name]; /flaky/<name> is truncated on the first request only; anything else 404."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    state = Server(base="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state.requests.append(self.path)
            parts = self.path.strip("/").split("/")
            if parts == ["hang"]:
                state.release.wait(10)
                return
            body = state.files.get(parts[-1])
            if body is None:
                self.send_error(404)
                return
            short = parts[0] == "truncated" or (
                parts[0] == "flaky" and state.requests.count(self.path) == 1
            )
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if short else body)
            self.close_connection = True

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- params --------------------------------------------------------------------------------


def test_params_from_yaml_defaults() -> None:
    params = DataParams.from_params(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    assert params.source == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert params.md5 == "c58f30108f718f92721af3b95e74349a"
    assert params.timeout_s > 0 and params.retries >= 0


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("source", ""),
        ("source", "ftp://example.org/cifar.tar.gz"),
        ("md5", "abc"),
        ("timeout_s", 0),
        ("retries", -1),
        ("retries", 1.5),
    ],
)
def test_params_rejects(key: str, value: object) -> None:
    data = {"source": "x", "md5": "0" * 32, "timeout_s": 5, "retries": 1, key: value}
    with pytest.raises(ParamError, match=f"data.{key}"):
        DataParams.from_params({"data": data})


# --- each source kind ----------------------------------------------------------------------


def test_official_archive_from_local_file(tmp_path: Path, archive: Path, splits: dict) -> None:
    data = prepare(params_for(archive, md5_of(archive)), root=tmp_path, download_dir=tmp_path)
    assert (data.source.kind, data.image_format) == (OFFICIAL_ARCHIVE, "raw")
    assert_same(data.splits, splits)
    metrics, summary = data.metrics(), data.summary()
    assert metrics == {
        "source": str(archive),
        "kind": OFFICIAL_ARCHIVE,
        "image_format": "raw",
        "lossy": False,
        "images": {"train": 20, "test": 10},
    }
    assert summary["per_class"]["train"] == dict.fromkeys(CLASSES, 2)
    assert summary["per_class"]["test"] == dict.fromkeys(CLASSES, 1)
    pixels = splits["train"].images.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(summary["normalization"]["mean"], pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(summary["normalization"]["std"], pixels.std(axis=0), rtol=1e-9)


@pytest.mark.parametrize("point_at", ["batches", "parent"])
def test_extracted_batches(tmp_path: Path, splits: dict, point_at: str) -> None:
    batches = tmp_path / "extracted" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for name, blob in batch_blobs(splits).items():
        (batches / name).write_bytes(blob)
    source = batches if point_at == "batches" else batches.parent
    data = prepare(params_for(source), root=tmp_path, download_dir=tmp_path)
    assert data.source.kind == EXTRACTED_BATCHES
    assert_same(data.splits, splits)


def test_image_folder_png_is_lossless_and_ordered(tmp_path: Path, folder: Path, splits) -> None:
    data = prepare(params_for(folder), root=tmp_path, download_dir=tmp_path)
    assert (data.source.kind, data.image_format) == (IMAGE_FOLDER, "png")
    expected = {split: sort_by_class(splits[split]) for split in splits}
    assert_same(data.splits, expected)
    assert data.metrics()["lossy"] is False


def test_image_folder_pool_matches_single_process(folder: Path) -> None:
    one, fmt_one = read_image_folder(folder, workers=1)
    two, fmt_two = read_image_folder(folder, workers=2)
    assert fmt_one == fmt_two == "png"
    assert_same(two, one)


def test_image_folder_jpeg_grayscale_and_relative_path(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    write_image_folder(tmp_path / "jpeg", make_splits(1, 1), suffix=".jpg")
    # A grayscale JPEG is accepted and becomes RGB.
    gray = tmp_path / "jpeg" / "train" / "cat" / "9999.jpeg"
    Image.fromarray(np.full((32, 32), 100, dtype=np.uint8)).save(gray)
    data = prepare(params_for("../jpeg"), root=root, download_dir=tmp_path)
    assert data.image_format == "jpeg" and data.metrics()["lossy"] is True
    assert len(data.splits["train"]) == 11
    cat = CLASSES.index("cat")
    last_cat = data.splits["train"].images[data.splits["train"].labels == cat][-1]
    assert np.all(np.abs(last_cat.astype(int) - 100) <= 1)


def test_download_from_local_server(tmp_path: Path, archive: Path, server: Server, splits) -> None:
    server.files[ARCHIVE_NAME] = archive.read_bytes()
    params = params_for(server.url(ARCHIVE_NAME), md5_of(archive))
    downloads = tmp_path / "downloads"
    data = prepare(params, root=tmp_path, download_dir=downloads, progress=False)
    assert data.source.kind == OFFICIAL_ARCHIVE and data.source.given == params.source
    assert_same(data.splits, splits)
    assert [p.name for p in downloads.iterdir()] == [ARCHIVE_NAME]
    # A second run reuses the verified download.
    prepare(params, root=tmp_path, download_dir=downloads, progress=False)
    assert len(server.requests) == 1


def test_download_retries_after_a_short_body(tmp_path: Path, archive: Path, server: Server) -> None:
    server.files[ARCHIVE_NAME] = archive.read_bytes()
    dest = tmp_path / "downloads" / ARCHIVE_NAME
    got = fetch_archive(
        server.url(f"flaky/{ARCHIVE_NAME}"),
        dest,
        md5=md5_of(archive),
        timeout_s=5,
        retries=1,
        backoff_s=0,
        progress=False,
    )
    assert got == dest and md5_of(dest) == md5_of(archive) and len(server.requests) == 2


def test_dvc_stage_depends_on_the_data_package() -> None:
    stage = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]["download"]
    assert "src/mobilenet_study/data" in stage["deps"]
    assert stage["params"] == ["data"]
    # Bytecode written beside the sources must not count as a changed dependency.
    assert "__pycache__/" in (REPO_ROOT / ".dvcignore").read_text().split()


def test_download_replaces_a_wrong_file_under_the_final_name(
    tmp_path: Path, archive: Path, server: Server
) -> None:
    server.files[ARCHIVE_NAME] = archive.read_bytes()
    dest = tmp_path / "downloads" / ARCHIVE_NAME
    dest.parent.mkdir()
    dest.write_bytes(b"stale partial download")
    killed = dest.parent / ".cifar-10-python.tar.abc123.gz"  # a killed run's temporary file
    killed.write_bytes(b"partial")
    fetch_archive(server.url(ARCHIVE_NAME), dest, md5=md5_of(archive), timeout_s=5, retries=0)
    assert md5_of(dest) == md5_of(archive) and not killed.exists()


# --- download failures ---------------------------------------------------------------------


def _download_fails(
    tmp_path: Path, url: str, md5: str = "0" * 32, error: type = DownloadError, **kw
) -> str:
    downloads = tmp_path / "downloads"
    with pytest.raises(error) as info:
        prepare(params_for(url, md5, **kw), root=tmp_path, download_dir=downloads, progress=False)
    # Nothing under the final name, and no temporary file left behind either.
    assert not downloads.exists() or list(downloads.iterdir()) == []
    return str(info.value)


def test_no_network_names_the_url_and_the_local_way_out(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/{ARCHIVE_NAME}"
    message = _download_fails(tmp_path, url)
    assert url in message and "Could not reach" in message
    assert "data.source" in message and "make quick DATA=../shared/data/cifar10-jpeg" in message


def test_http_error(tmp_path: Path, server: Server) -> None:
    message = _download_fails(tmp_path, server.url("nothing-here.tar.gz"))
    assert "HTTP 404" in message and "data.source" in message


def test_timeout(tmp_path: Path, server: Server) -> None:
    message = _download_fails(tmp_path, server.url("hang"), timeout_s=0.3)
    assert "timed out" in message and "data.timeout_s" in message


def test_truncated_body(tmp_path: Path, server: Server, archive: Path) -> None:
    server.files[ARCHIVE_NAME] = archive.read_bytes()
    message = _download_fails(tmp_path, server.url(f"truncated/{ARCHIVE_NAME}"), md5_of(archive))
    assert "ended after" in message and "1 attempt" in message


def test_md5_mismatch_keeps_nothing_then_a_fixed_md5_succeeds(
    tmp_path: Path, server: Server, archive: Path
) -> None:
    server.files[ARCHIVE_NAME] = archive.read_bytes()
    url = server.url(ARCHIVE_NAME)
    message = _download_fails(tmp_path, url, "f" * 32, ChecksumError)
    assert md5_of(archive) in message and "data.md5" in message
    data = prepare(params_for(url, md5_of(archive)), root=tmp_path, download_dir=tmp_path / "dl")
    assert len(data.splits["train"]) == 20


# --- bad archives --------------------------------------------------------------------------


def _archive_fails(tmp_path: Path, path: Path, error: type = ArchiveError) -> str:
    # md5 set to the file's own, as a user who built it on purpose would: the archive's
    # contents, not its checksum, must be what is refused.
    with pytest.raises(error) as info:
        prepare(params_for(path, md5_of(path)), root=tmp_path, download_dir=tmp_path)
    return str(info.value)


def test_local_archive_md5_mismatch(tmp_path: Path, archive: Path) -> None:
    with pytest.raises(ChecksumError, match="data.md5: " + md5_of(archive)):
        prepare(params_for(archive, "1" * 32), root=tmp_path, download_dir=tmp_path)


@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_archive(tmp_path: Path, archive: Path, keep: float) -> None:
    blob = archive.read_bytes()
    archive.write_bytes(blob[: int(len(blob) * keep)])
    assert "truncated" in _archive_fails(tmp_path, archive)


def test_corrupt_tar(tmp_path: Path) -> None:
    path = tmp_path / ARCHIVE_NAME
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert "not a readable tar archive" in _archive_fails(tmp_path, path)


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(
    "member",
    [
        tarfile.TarInfo("cifar-10-batches-py/../../escape.txt"),
        tarfile.TarInfo("/tmp/absolute.txt"),
        _link("cifar-10-batches-py/link", "/etc/passwd", tarfile.SYMTYPE),
        _link("cifar-10-batches-py/hard", "../../outside", tarfile.LNKTYPE),
    ],
    ids=["dotdot", "absolute", "symlink", "hardlink"],
)
def test_member_escaping_the_extraction_dir(
    tmp_path: Path, splits: dict, member: tarfile.TarInfo
) -> None:
    path = write_archive(tmp_path / ARCHIVE_NAME, batch_blobs(splits), extra=[member])
    assert "escape the extraction directory" in _archive_fails(tmp_path, path)


def test_archive_of_other_classes_or_missing_batch(tmp_path: Path, splits: dict) -> None:
    wrong = batch_blobs(splits, label_names=tuple(reversed(CLASSES)))
    path = write_archive(tmp_path / "wrong.tar.gz", wrong)
    assert "not the CIFAR-10 archive" in _archive_fails(tmp_path, path)
    blobs = batch_blobs(splits)
    del blobs["data_batch_3"]
    path = write_archive(tmp_path / "short.tar.gz", blobs)
    assert "lacks cifar-10-batches-py/data_batch_3" in _archive_fails(tmp_path, path)


def test_pickle_that_would_run_code_is_refused(tmp_path: Path, splits: dict) -> None:
    class Evil:
        def __reduce__(self) -> tuple:
            return (shutil.rmtree, (str(tmp_path / "victim"),))

    (tmp_path / "victim").mkdir()
    blobs = batch_blobs(splits)
    blobs["test_batch"] = pickle.dumps({b"data": Evil()}, protocol=2)
    path = write_archive(tmp_path / "evil.tar.gz", blobs)
    assert "refusing to construct shutil.rmtree" in _archive_fails(tmp_path, path)
    assert (tmp_path / "victim").is_dir()


# --- bad image folders and paths ------------------------------------------------------------


def _folder_fails(tmp_path: Path, folder: Path, error: type = ImageFolderError) -> str:
    with pytest.raises(error) as info:
        prepare(params_for(folder), root=tmp_path, download_dir=tmp_path)
    return str(info.value)


def test_missing_class_folder(tmp_path: Path, folder: Path) -> None:
    shutil.rmtree(folder / "test" / "frog")
    assert "missing class folder(s) frog" in _folder_fails(tmp_path, folder)


def test_unknown_class_folder(tmp_path: Path, folder: Path) -> None:
    (folder / "train" / "automobile").rename(folder / "train" / "car")
    message = _folder_fails(tmp_path, folder)
    assert (
        "unknown class folder(s) car" in message and "missing class folder(s) automobile" in message
    )


def test_unreadable_image(tmp_path: Path, folder: Path) -> None:
    bad = folder / "train" / "ship" / "0008.png"
    bad.write_bytes(b"not really a png")
    message = _folder_fails(tmp_path, folder)
    assert str(bad) in message and "cannot be read" in message


def test_truncated_image(tmp_path: Path, folder: Path) -> None:
    bad = folder / "test" / "dog" / "0005.png"
    bad.write_bytes(bad.read_bytes()[:200])
    assert str(bad) in _folder_fails(tmp_path, folder)


def test_image_not_32x32(tmp_path: Path, folder: Path) -> None:
    bad = folder / "train" / "bird" / "0002.png"
    Image.new("RGB", (64, 48)).save(bad)
    assert "is 64x48 pixels, not 32x32" in _folder_fails(tmp_path, folder)


def test_non_image_file_in_a_class_folder(tmp_path: Path, folder: Path) -> None:
    (folder / "train" / "deer" / "notes.txt").write_text("hi")
    (folder / "train" / "deer" / ".DS_Store").write_text("ignored")
    assert "not PNG or JPEG files (notes.txt)" in _folder_fails(tmp_path, folder)


@pytest.mark.parametrize("how", ["no_folder", "empty_folder", "empty_class_folders"])
def test_empty_split(tmp_path: Path, folder: Path, how: str) -> None:
    test_dir = folder / "test"
    shutil.rmtree(test_dir)
    if how != "no_folder":
        test_dir.mkdir()
    if how == "empty_class_folders":
        for name in CLASSES:
            (test_dir / name).mkdir()
    message = _folder_fails(tmp_path, folder)
    assert "test" in message and ("split is missing" in message or "no images" in message)


def test_empty_class_folder(tmp_path: Path, folder: Path) -> None:
    for image in (folder / "train" / "horse").iterdir():
        image.unlink()
    assert "empty class folder(s) horse" in _folder_fails(tmp_path, folder)


def test_path_that_does_not_exist(tmp_path: Path) -> None:
    message = _folder_fails(tmp_path, Path("no/such/place"), SourceNotFoundError)
    assert str(tmp_path / "no/such/place") in message and "does not exist" in message


def test_folder_of_unknown_layout(tmp_path: Path) -> None:
    (tmp_path / "random" / "stuff").mkdir(parents=True)
    assert "neither" in _folder_fails(tmp_path, tmp_path / "random", SourceNotFoundError)


# --- prepared outputs ----------------------------------------------------------------------


def test_save_load_normalization_and_samples(tmp_path: Path, folder: Path) -> None:
    data = prepare(params_for(folder), root=tmp_path, download_dir=tmp_path)
    save_prepared(data, tmp_path / "prepared")
    for split in ("train", "test"):
        images, labels = load_split(tmp_path / "prepared", split)
        assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(images, data.splits[split].images)
    stats = read_stats(tmp_path / "prepared")
    # Per-channel mean and population std of the training pixels, in [0, 1] units.
    px = data.splits["train"].images.reshape(-1, 3) / 255
    np.testing.assert_allclose(stats.mean, px.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(stats.std, px.std(axis=0), rtol=1e-9)
    assert stats.content_hash == data.content_sha256
    write_json(tmp_path / "data.json", data.metrics())
    summary = read_summary(tmp_path / "data.json")
    assert (summary.source_kind, summary.image_format, summary.lossy) == (
        "image_folder",
        "png",
        False,
    )
    assert summary.source == str(folder)
    save_figure(samples_figure(data.splits["train"]), tmp_path / "samples.png")
    assert Image.open(tmp_path / "samples.png").size[0] > 100
    with pytest.raises(PreparedDataError, match="dvc repro download"):
        load_split(tmp_path / "nowhere", "train")
    with pytest.raises(PreparedDataError, match="dvc repro download"):
        read_summary(tmp_path / "nowhere.json")
    with pytest.raises(PreparedDataError, match="dvc repro download"):
        read_stats(tmp_path / "nowhere")
    summary_file = tmp_path / "prepared" / "summary.json"
    bad = json.loads(summary_file.read_text())
    bad["normalization"]["std"] = [0.2, 0.0, 0.2]
    summary_file.write_text(json.dumps(bad))
    with pytest.raises(PreparedDataError, match="positive stds"):
        read_stats(tmp_path / "prepared")


def test_prepared_files_depend_on_the_pixels_alone(
    tmp_path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same data prepared twice, at another time and from another path, gives the same
    bytes: DVC hashes data/prepared, and the training stages depend on it alone."""
    data = prepare(params_for(folder), root=tmp_path, download_dir=tmp_path)
    save_prepared(data, tmp_path / "first")
    copy = shutil.copytree(folder, tmp_path / "elsewhere")
    monkeypatch.setattr("time.time", lambda: 2_000_000_000.0)  # another day, for zip stamps
    again = prepare(params_for(copy), root=tmp_path, download_dir=tmp_path)
    save_prepared(again, tmp_path / "second")
    for name in ("train.npz", "test.npz", "summary.json"):
        first, second = (tmp_path / run / name for run in ("first", "second"))
        assert first.read_bytes() == second.read_bytes(), name


def test_real_files_from_the_shared_mirror(tmp_path: Path) -> None:
    if not SHARED_MIRROR.is_dir():
        pytest.skip(
            f"no shared JPEG mirror at {SHARED_MIRROR} (CI places ../shared beside the clone)"
        )
    for split in ("train", "test"):
        for name in CLASSES:
            target = tmp_path / "few" / split / name
            target.mkdir(parents=True)
            for image in sorted((SHARED_MIRROR / split / name).iterdir())[:2]:
                shutil.copy(image, target / image.name)
    data = prepare(params_for(tmp_path / "few"), root=tmp_path, download_dir=tmp_path)
    assert (data.source.kind, data.image_format) == (IMAGE_FOLDER, "jpeg")
    assert data.summary()["per_class"]["test"] == dict.fromkeys(CLASSES, 2)
    assert min(data.mean) > 0.2 and max(data.mean) < 0.8


# --- the stage -----------------------------------------------------------------------------


def _run_stage(cwd: Path, source: str, md5: str = "0" * 32) -> subprocess.CompletedProcess:
    params = {"data": {"source": source, "md5": md5, "timeout_s": 5, "retries": 0}}
    (cwd / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "stages" / "download.py")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_stage_failure_leaves_no_stale_output_and_a_rerun_succeeds(
    tmp_path: Path, folder: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    outputs = [work / "data/prepared/train.npz", work / "metrics/data.json", work / "plots/data"]
    ok = _run_stage(work, "../mirror")
    assert ok.returncode == 0, ok.stderr
    assert all(p.exists() for p in outputs)
    assert json.loads((work / "metrics/data.json").read_text())["kind"] == IMAGE_FOLDER

    shutil.rmtree(folder / "train" / "cat")
    failed = _run_stage(work, "../mirror")
    assert failed.returncode == 2
    assert failed.stderr.startswith("error: ") and "Traceback" not in failed.stderr
    assert "missing class folder(s) cat" in failed.stderr
    assert not any(p.exists() for p in outputs)

    write_image_folder(folder, {"train": make_splits(1, 1)["train"]}, suffix=".jpg")
    again = _run_stage(work, "../mirror")
    assert again.returncode == 0, again.stderr
    assert json.loads((work / "metrics/data.json").read_text())["image_format"] == "jpeg+png"


@pytest.mark.slow
def test_dvc_repro_download(pipeline_repo, tmp_path: Path) -> None:
    write_image_folder(tmp_path / "images", make_splits(1, 1))
    pipeline_repo.set_params({"data.source": "../images"})
    pipeline_repo.dvc("repro", "download")
    root = pipeline_repo.path
    metrics = json.loads((root / "metrics/data.json").read_text())
    assert metrics["kind"] == IMAGE_FOLDER and metrics["images"] == {"train": 10, "test": 10}
    assert (root / "plots/data/samples.png").is_file()
    images, labels = load_split(root / "data/prepared", "train")
    assert images.shape == (10, 32, 32, 3) and list(labels) == list(range(10))
    assert "download" in (root / "dvc.lock").read_text()
    status = pipeline_repo.dvc("status", "download")
    assert "changed" not in status.stdout
