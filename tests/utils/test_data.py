"""Data loading: IDX parsing, downloads (from a local server), safe extraction, stand-ins."""
from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tarfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from utils import data as data_mod
from utils.download import (ChecksumError, DataUnavailable, UnsafeArchive, download, safe_extract_tar)


def write_idx(path: Path, array: np.ndarray) -> None:
    magic = 2051 if array.ndim == 3 else 2049
    header = struct.pack(">I", magic) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def make_mnist_folder(folder: Path, n_train=50, n_test=20) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, n_train))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, n_test))


def test_read_idx_roundtrip_and_corruption(tmp_path):
    arr = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    write_idx(tmp_path / "a.gz", arr)
    assert np.array_equal(data_mod.read_idx(tmp_path / "a.gz"), arr)
    # truncated body
    with gzip.open(tmp_path / "b.gz", "wb") as fh:
        fh.write(struct.pack(">IIII", 2051, 2, 28, 28) + b"\x00" * 10)
    with pytest.raises(DataUnavailable, match="truncated"):
        data_mod.read_idx(tmp_path / "b.gz")
    (tmp_path / "c.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataUnavailable):
        data_mod.read_idx(tmp_path / "c.gz")


def test_real_mnist_from_data_dir_is_used_and_normalised(tmp_path):
    make_mnist_folder(tmp_path / "mnist")
    ds = data_mod.load_images("mnist", data_dir=tmp_path, train_size=30, test_size=10)
    assert ds.name == "mnist" and not ds.standin and ds.label == "mnist"
    assert tuple(ds.x_train.shape) == (30, 1, 28, 28) and tuple(ds.x_test.shape) == (10, 1, 28, 28)
    assert abs(float(ds.x_train.mean())) < 1e-4 and abs(float(ds.x_train.std()) - 1) < 1e-2
    shown = ds.to_display(ds.x_test[:3])
    assert shown.shape == (3, 28, 28) and shown.min() >= 0 and shown.max() <= 1


def test_normalisation_does_not_depend_on_the_thread_count(tmp_path):
    # A --jobs worker has one thread, a serial run every core: the same images must come out bit for bit
    import torch

    # (50 training images: a size whose float32 mean differed in the last bit between 2 and 1 threads)
    make_mnist_folder(tmp_path / "mnist", n_train=50)
    before = torch.get_num_threads()
    loaded = []
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            loaded.append(data_mod.load_images("mnist", data_dir=tmp_path))
    finally:
        torch.set_num_threads(before)
    two, one = loaded
    assert two.mean == one.mean and two.std == one.std
    assert torch.equal(two.x_train, one.x_train) and torch.equal(two.x_test, one.x_test)


def test_whole_dataset_from_a_read_only_file_loads_without_a_warning(tmp_path):
    # No subset: the tensors come straight from read_idx's read-only buffer (FULL and HYBRID runs)
    make_mnist_folder(tmp_path / "mnist")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = data_mod.load_images("mnist", data_dir=tmp_path)
    assert not ds.standin and len(ds.y_train) > 0


def test_missing_mnist_falls_back_quickly_with_label(tmp_path):
    t0 = time.perf_counter()
    messages = []
    ds = data_mod.load_images("mnist", data_dir=tmp_path, train_size=50, test_size=20, log=messages.append)
    assert time.perf_counter() - t0 < 15
    assert ds.standin and ds.requested == "mnist" and ds.name in {"fashion-mnist", "digits"}
    assert "stand-in" in ds.label
    text = " ".join(messages)
    assert "mnist" in text and str(tmp_path / "mnist") in text  # says where it looked and how to supply it


def test_no_fallback_raises_with_instructions(tmp_path):
    with pytest.raises(DataUnavailable, match="no-fallback") as err:
        data_mod.load_images("mnist", data_dir=tmp_path, allow_fallback=False)
    assert "copy the four mnist files" in str(err.value)


def test_cifar_standin_has_cifar_shape(tmp_path):
    ds = data_mod.load_images("cifar10", data_dir=tmp_path, train_size=40, test_size=10)
    assert ds.standin and ds.shape == (3, 32, 32)


def test_digits_dataset_is_real_and_28x28():
    ds = data_mod.load_images("digits", train_size=100, test_size=50)
    assert ds.name == "digits" and not ds.standin and ds.shape == (1, 28, 28)
    assert set(ds.y_train.tolist()) <= set(range(10))


def test_synthetic_reviews_labels_follow_the_rule():
    texts, labels = data_mod.synthetic_reviews(200, seed=3)
    assert len(texts) == 200 and set(labels.tolist()) == {0, 1}
    pos = {w for w in data_mod._POSITIVE}
    neg = {w for w in data_mod._NEGATIVE}
    for text, label in zip(texts[:50], labels[:50]):
        words = text.split()
        score = 0
        for i, w in enumerate(words):
            sign = 1 if w in pos else -1 if w in neg else 0
            if sign and i > 0 and words[i - 1] == "not":
                sign = -sign
            score += sign
        assert (score > 0) == bool(label)


def test_idx_with_a_short_header_is_a_clear_data_error(tmp_path):
    path = tmp_path / "short-idx3-ubyte"
    path.write_bytes(struct.pack(">I", 2051) + b"\x00\x00\x00\x02")   # 3 dims promised, 1 given
    with pytest.raises(DataUnavailable, match="truncated"):
        data_mod.read_idx(path)


def test_a_corrupt_copy_in_data_does_not_hide_the_system_copy(tmp_path, monkeypatch):
    good = tmp_path / "system"
    make_mnist_folder(good)
    bad = tmp_path / "data" / "fashion-mnist"
    make_mnist_folder(bad)
    (bad / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    monkeypatch.setattr(data_mod.config, "SYSTEM_FASHION_MNIST", good)
    data_mod.load_raw.cache_clear()
    raw = data_mod.load_raw("fashion-mnist", str(tmp_path / "data"))
    data_mod.load_raw.cache_clear()
    assert raw.source.startswith(str(good)) and raw.x_train.shape == (50, 28, 28)


def test_files_on_disk_are_md5_checked_and_the_difference_reported(tmp_path):
    make_mnist_folder(tmp_path / "data" / "mnist")       # valid IDX files, not the official ones
    data_mod.load_raw.cache_clear()
    raw = data_mod.load_raw("mnist", str(tmp_path / "data"))
    data_mod.load_raw.cache_clear()
    assert "differs from the official files" in raw.source and raw.x_train.shape == (50, 28, 28)


def _pickle_batch(path, n, label):
    import pickle

    with open(path, "wb") as fh:
        pickle.dump({b"data": np.full((n, 3072), label, np.uint8), b"labels": [label] * n}, fh)


def test_half_extracted_cifar_falls_back_instead_of_failing_forever(tmp_path):
    batches = tmp_path / "cifar10" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    _pickle_batch(batches / "test_batch", 4, 1)          # only the test batch: a killed extraction
    data_mod.load_raw.cache_clear()
    data_mod._failed_downloads.clear()
    with pytest.raises(DataUnavailable, match="incomplete"):
        data_mod.load_raw("cifar10", str(tmp_path))
    ds = data_mod.load_images("cifar10", data_dir=tmp_path, train_size=40, test_size=10, log=lambda m: None)
    assert ds.standin and ds.shape == (3, 32, 32)


def test_cifar_batches_are_read_without_running_pickled_code(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil_batch"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        data_mod._ArrayUnpickler(open(path, "rb"), encoding="bytes").load()


def test_empty_imdb_folders_are_not_taken_for_real_imdb(tmp_path):
    root = tmp_path / "imdb" / "aclImdb"
    for split in ("train", "test"):
        for sub in ("pos", "neg"):
            (root / split / sub).mkdir(parents=True)
    (root / "train" / "pos" / "1_9.txt").write_text("great")
    d = data_mod.load_imdb(data_dir=tmp_path, log=lambda m: None)
    assert d.standin and d.name != "imdb"
    with pytest.raises(DataUnavailable, match="not extracted by this program"):
        data_mod.load_imdb(data_dir=tmp_path, allow_fallback=False, log=lambda m: None)


def test_imdb_standin_when_offline(tmp_path):
    d = data_mod.load_imdb(data_dir=tmp_path, log=lambda m: None)
    assert d.standin and d.name == "synthetic-reviews" and len(d.train_texts) == len(d.train_labels)


# ---------------------------------------------------------------- downloads from a local server
def test_download_verifies_and_caches(server, tmp_path):
    root, base, hits = server
    payload = b"hello dataset" * 100
    (root / "f.bin").write_bytes(payload)
    md5 = hashlib.md5(payload).hexdigest()
    dest = tmp_path / "cache" / "f.bin"
    download(f"{base}/f.bin", dest, md5)
    assert dest.read_bytes() == payload
    n = len(hits)
    download(f"{base}/f.bin", dest, md5)           # cached: no second request
    assert len(hits) == n
    dest.write_bytes(b"corrupt")                    # a mismatched local copy: fetched again, kept aside
    download(f"{base}/f.bin", dest, md5)
    assert dest.read_bytes() == payload and len(hits) == n + 1
    aside = list(dest.parent.glob("f.bin.mismatch-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"corrupt"


def test_a_mismatched_local_file_is_never_deleted_when_offline(tmp_path, monkeypatch):
    """Issue: a user's re-compressed archive was deleted before the program knew it could fetch one."""
    monkeypatch.setenv("DL_OFFLINE", "1")
    dest = tmp_path / "train-images-idx3-ubyte.gz"
    dest.write_bytes(b"user's own copy")
    with pytest.raises(DataUnavailable, match="left as it is"):
        download("http://127.0.0.1:9/x.gz", dest, "0" * 32)
    assert dest.read_bytes() == b"user's own copy"
    monkeypatch.delenv("DL_OFFLINE")
    with pytest.raises(DataUnavailable):             # unreachable server: still untouched
        download("http://127.0.0.1:9/x.gz", dest, "0" * 32, timeout=2)
    assert dest.read_bytes() == b"user's own copy" and sorted(p.name for p in tmp_path.iterdir()) == [dest.name]


def test_a_wrong_download_never_replaces_the_local_file(server, tmp_path):
    root, base, _ = server
    (root / "h.bin").write_bytes(b"served but wrong")
    dest = tmp_path / "cache" / "h.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"local")
    with pytest.raises(ChecksumError, match="left as it is"):
        download(f"{base}/h.bin", dest, "0" * 32)
    assert dest.read_bytes() == b"local" and [p.name for p in dest.parent.iterdir()] == ["h.bin"]


def test_an_http_protocol_error_is_a_clean_data_error(tmp_path, monkeypatch):
    import http.client

    monkeypatch.delenv("DL_OFFLINE", raising=False)

    def broken(*a, **k):
        raise http.client.RemoteDisconnected("server closed the connection")

    monkeypatch.setattr("urllib.request.urlopen", broken)
    with pytest.raises(DataUnavailable, match="could not download"):
        download("http://example.invalid/x", tmp_path / "x")


@pytest.mark.parametrize("value", ["abc", "-1", "0", "nan", ""])
def test_a_bad_timeout_setting_falls_back_to_the_default(value, monkeypatch):
    from utils.download import DEFAULT_TIMEOUT, connect_timeout

    monkeypatch.setenv("DL_DOWNLOAD_TIMEOUT", value)
    assert connect_timeout() == DEFAULT_TIMEOUT
    monkeypatch.setenv("DL_DOWNLOAD_TIMEOUT", "2.5")
    assert connect_timeout() == 2.5


def test_download_checksum_mismatch_leaves_no_file(server, tmp_path):
    root, base, _ = server
    (root / "g.bin").write_bytes(b"abc")
    dest = tmp_path / "g.bin"
    with pytest.raises(ChecksumError):
        download(f"{base}/g.bin", dest, "0" * 32)
    assert not dest.exists() and not list(tmp_path.glob(".g*"))


def test_download_fails_fast_when_unreachable(tmp_path, monkeypatch):
    monkeypatch.delenv("DL_OFFLINE", raising=False)
    t0 = time.perf_counter()
    with pytest.raises(DataUnavailable, match="could not download"):
        download("http://127.0.0.1:9/nothing.gz", tmp_path / "x.gz")  # port 9: nothing listens
    assert time.perf_counter() - t0 < 10


def test_mnist_download_path_uses_checksums(server, tmp_path, monkeypatch):
    root, base, _ = server
    make_mnist_folder(root)
    sums = tuple(hashlib.md5((root / f"{s}.gz").read_bytes()).hexdigest() for s in data_mod.IDX_FILES)
    monkeypatch.setitem(data_mod.SOURCES, "mnist", (base + "/", sums))
    data_mod.load_raw.cache_clear()
    data_mod._failed_downloads.clear()
    raw = data_mod.load_raw("mnist", str(tmp_path / "data"))
    assert raw.x_train.shape == (50, 28, 28)
    assert all((tmp_path / "data" / "mnist" / f"{s}.gz").exists() for s in data_mod.IDX_FILES)
    data_mod.load_raw.cache_clear()


# ---------------------------------------------------------------- safe extraction
def make_tar(path: Path, members: list[tuple[str, bytes | None, str | None]]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, content, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))


def test_safe_extract_normal_archive(tmp_path):
    make_tar(tmp_path / "ok.tar.gz", [("aclImdb/train/pos/1_9.txt", b"great", None),
                                      ("aclImdb/link", None, "train/pos/1_9.txt")])
    names = safe_extract_tar(tmp_path / "ok.tar.gz", tmp_path / "out")
    assert (tmp_path / "out" / "aclImdb" / "train" / "pos" / "1_9.txt").read_bytes() == b"great"
    assert "aclImdb/link" in names


@pytest.mark.parametrize("member", [
    ("../evil.txt", b"x", None),
    ("/tmp/evil-abs.txt", b"x", None),
    ("a/../../evil.txt", b"x", None),
    ("link", None, "/etc/passwd"),
    ("sub/link", None, "../../outside"),
])
def test_safe_extract_rejects_escapes(tmp_path, member):
    make_tar(tmp_path / "bad.tar.gz", [member])
    with pytest.raises(UnsafeArchive):
        safe_extract_tar(tmp_path / "bad.tar.gz", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_a_refused_archive_leaves_no_partial_files(tmp_path):
    make_tar(tmp_path / "mixed.tar.gz", [("ok/a.txt", b"fine", None), ("../evil.txt", b"x", None)])
    with pytest.raises(UnsafeArchive):
        safe_extract_tar(tmp_path / "mixed.tar.gz", tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*")) and not (tmp_path / "evil.txt").exists()


def test_extract_once_marks_complete_folders_and_sets_half_extracted_ones_aside(tmp_path):
    from utils.download import extract_once, marker_ok

    make_tar(tmp_path / "a.tar.gz", [("top/x.txt", b"x", None)])
    half = tmp_path / "top"
    half.mkdir()
    (half / "partial.txt").write_text("left by a killed run")
    out = extract_once(tmp_path / "a.tar.gz", tmp_path, "top", "md5-of-a")
    assert out == half and (out / "x.txt").read_text() == "x" and marker_ok(out, "md5-of-a")
    assert (tmp_path / "top.incomplete" / "partial.txt").exists()   # set aside, not deleted
    assert not marker_ok(out, "another-md5")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".extract-")]


def test_corrupt_archive_is_reported(tmp_path):
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(DataUnavailable, match="corrupt archive"):
        safe_extract_tar(tmp_path / "broken.tar.gz", tmp_path / "out")
