"""CIFAR-10's download path (utils.data), tested against a small archive served locally: the real
archive layout (cifar-10-batches-py/ with pickled batches), md5-checked, extracted, read as 3×32×32."""
from __future__ import annotations

import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest

from utils import data as data_mod


def tiny_cifar_archive(path, per_batch: int = 4):
    """A cifar-10-python.tar.gz in the official layout; image i of batch b is filled with 10·b + i and
    labelled (b + i) % 10. Returns (archive md5, {batch file: md5})."""
    batch_md5 = {}
    with tarfile.open(path, "w:gz") as tar:
        for b, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
            data = np.repeat((10 * b + np.arange(per_batch, dtype=np.uint8))[:, None], 3072, axis=1)
            blob = pickle.dumps({b"data": data, b"labels": [(b + i) % 10 for i in range(per_batch)]})
            batch_md5[name] = hashlib.md5(blob).hexdigest()
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return hashlib.md5(path.read_bytes()).hexdigest(), batch_md5


def test_cifar10_downloads_verifies_and_loads_from_a_local_server(server, tmp_path, monkeypatch):
    root, base, hits = server
    md5, batch_md5 = tiny_cifar_archive(root / "cifar-10-python.tar.gz")
    monkeypatch.setattr(data_mod, "CIFAR_URL", f"{base}/cifar-10-python.tar.gz")
    monkeypatch.setattr(data_mod, "CIFAR_MD5", md5)
    monkeypatch.setattr(data_mod, "CIFAR_BATCH_MD5", batch_md5)
    data_mod.load_raw.cache_clear()
    data_mod._failed_downloads.clear()
    cache = tmp_path / "data"
    ds = data_mod.load_images("cifar10", data_dir=cache, allow_fallback=False, log=lambda m: None)
    assert ds.name == "cifar10" and not ds.standin
    assert ds.shape == (3, 32, 32) and len(ds.y_train) == 20 and len(ds.y_test) == 4
    assert ds.y_train[:4].tolist() == [0, 1, 2, 3] and ds.y_test.tolist() == [5, 6, 7, 8]
    raw = data_mod.load_raw("cifar10", str(cache))
    assert raw.x_train.shape == (20, 32, 32, 3)
    assert raw.x_train[5, 0, 0].tolist() == [11, 11, 11]      # batch 2, image 1: filled with 10 + 1
    assert (cache / "cifar10" / "cifar-10-python.tar.gz").exists()
    assert hits == ["/cifar-10-python.tar.gz"]
    data_mod.load_raw.cache_clear()                           # a second load uses the cache, no request
    data_mod.load_images("cifar10", data_dir=cache, allow_fallback=False, log=lambda m: None)
    assert hits == ["/cifar-10-python.tar.gz"]
    data_mod.load_raw.cache_clear()


def test_cifar10_archive_with_a_wrong_md5_is_refused_and_falls_back(server, tmp_path, monkeypatch):
    root, base, _ = server
    _, batch_md5 = tiny_cifar_archive(root / "cifar-10-python.tar.gz")
    monkeypatch.setattr(data_mod, "CIFAR_URL", f"{base}/cifar-10-python.tar.gz")
    monkeypatch.setattr(data_mod, "CIFAR_MD5", "0" * 32)
    monkeypatch.setattr(data_mod, "CIFAR_BATCH_MD5", batch_md5)
    data_mod.load_raw.cache_clear()
    data_mod._failed_downloads.clear()
    with pytest.raises(data_mod.DataUnavailable, match="checksum"):
        data_mod.load_images("cifar10", data_dir=tmp_path / "data", allow_fallback=False, log=lambda m: None)
    assert not (tmp_path / "data" / "cifar10" / "cifar-10-batches-py").exists()
    data_mod.load_raw.cache_clear()
    data_mod._failed_downloads.clear()
