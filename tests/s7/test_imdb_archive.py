"""The IMDb path end to end on small archives made here and served locally: a good one is downloaded,
md5-checked, extracted and tokenized; hostile ones (path traversal, a symlink out) are refused."""
from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from experiments.s7_attention._shared import text_splits
from utils import data as data_mod
from utils.download import DataUnavailable


def make_tar(path: Path, members) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, content, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return hashlib.md5(path.read_bytes()).hexdigest()


def reviews(n=6):
    out = []
    for split in ("train", "test"):
        for sub, word in (("pos", "wonderful"), ("neg", "awful")):
            for i in range(n):
                out.append((f"aclImdb/{split}/{sub}/{i}_7.txt", f"The film was {word}.<br />Review {i}".encode(), None))
    return out


def serve(server, monkeypatch, members):
    root, base, _ = server
    md5 = make_tar(root / "aclImdb_v1.tar.gz", members)
    monkeypatch.setattr(data_mod, "IMDB_URL", f"{base}/aclImdb_v1.tar.gz")
    monkeypatch.setattr(data_mod, "IMDB_MD5", md5)


def test_served_archive_is_downloaded_extracted_and_tokenized(server, monkeypatch, tmp_path):
    serve(server, monkeypatch, reviews())
    d = data_mod.load_imdb(data_dir=tmp_path / "data", allow_fallback=False, log=lambda m: None)
    assert not d.standin and d.name == "imdb"
    assert len(d.train_texts) == 12 and sorted(d.train_labels.tolist()) == [0] * 6 + [1] * 6
    assert "<br />" not in d.train_texts[0]
    s = text_splits(d, vocab_size=50, max_len=8, train_size=None, test_size=None, val_fraction=0.25, seed=0)
    assert len(s.y_train) == 9 and len(s.y_val) == 3 and len(s.y_test) == 12
    assert "wonderful" in s.vocab and "awful" in s.vocab and s.vocab[:2] == ["<pad>", "<unk>"]
    assert s.x_test.shape == (12, 8)


@pytest.mark.parametrize("evil", [("aclImdb/../../evil.txt", b"x", None), ("aclImdb/train/link", None, "/etc/passwd"),
                                  ("aclImdb/train/pos/up", None, "../../../../outside")])
def test_hostile_archive_is_refused_and_falls_back(server, monkeypatch, tmp_path, evil):
    serve(server, monkeypatch, reviews() + [evil])
    with pytest.raises(DataUnavailable):
        data_mod.load_imdb(data_dir=tmp_path / "data", allow_fallback=False, log=lambda m: None)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "data" / "evil.txt").exists()
    assert not (tmp_path / "data" / "imdb" / "aclImdb").exists()
    d = data_mod.load_imdb(data_dir=tmp_path / "data2", allow_fallback=True, log=lambda m: None)
    assert d.standin
