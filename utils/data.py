"""Datasets of the catalogue (TASKS.md, DATA), as in-memory tensors.

Image datasets come back as an ``ImageData`` whose tensors are already normalised float32
(N, C, H, W), so training loops only index them. Real data is searched for in data/ (and,
for Fashion-MNIST, in Debian's system copy), otherwise downloaded once into data/ with its
checksum verified. When that is impossible the labelled offline stand-in of TASKS.md is
used, unless the caller asked for strict data (``allow_fallback=False``).
"""
from __future__ import annotations

import gzip
import io
import pickle
import struct
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import config
from rich.markup import escape

from utils.download import DataUnavailable, download, extract_once, marker_ok, md5sum
from utils.provenance import limit_threads

if TYPE_CHECKING:
    import torch

IMAGE_DATASETS = config.IMAGE_DATASETS

MNIST_CLASSES = tuple(str(i) for i in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# Official archives and their md5 sums (the same ones torchvision checks).
SOURCES = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
               "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                      ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                       "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")),
}
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR_BATCH_MD5 = {  # the files inside the archive (the same sums torchvision checks)
    "data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e"}
IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"


@dataclass
class RawImages:
    """uint8 images (N, H, W) or (N, H, W, 3) with int64 labels, before any subsetting."""
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    source: str


@dataclass
class ImageData:
    """Normalised tensors ready for training, plus where they came from."""
    name: str                 # the dataset actually used
    requested: str            # the dataset the task asked for
    standin: bool             # True when ``name`` replaces an unavailable ``requested``
    note: str                 # one line on the source, or why the stand-in was used
    classes: tuple[str, ...]
    x_train: "torch.Tensor"   # (N, C, H, W) float32, normalised
    y_train: "torch.Tensor"   # (N,) int64
    x_test: "torch.Tensor"
    y_test: "torch.Tensor"
    mean: tuple[float, ...]
    std: tuple[float, ...]
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How figures name the data, e.g. 'fashion-mnist (stand-in for mnist)'."""
        return f"{self.name} (stand-in for {self.requested})" if self.standin else self.name

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.x_test.shape[1:])   # (a task may drop its training tensors once it has split them)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_display(self, x) -> np.ndarray:
        """Undo normalisation: (N, C, H, W) tensor -> (N, H, W) or (N, H, W, 3) array in [0, 1]."""
        import torch

        x = x.detach().cpu().float()
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        img = (x * std + mean).clamp(0, 1).numpy()
        return img[:, 0] if img.shape[1] == 1 else img.transpose(0, 2, 3, 1)


# ----------------------------------------------------------------------------- IDX files
def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally gzipped): magic 2049 = labels, 2051 = images."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise DataUnavailable(f"cannot read {path}: {exc}") from None
    if len(data) < 8:
        raise DataUnavailable(f"{path} is too short to be an IDX file")
    magic = struct.unpack(">I", data[:4])[0]
    if magic not in (2049, 2051):
        raise DataUnavailable(f"{path} is not an IDX file (magic {magic})")
    ndim = magic & 0xFF
    if len(data) < 4 + 4 * ndim:
        raise DataUnavailable(f"{path} is truncated: its header is shorter than {4 + 4 * ndim} bytes")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataUnavailable(f"{path} is truncated or corrupt ({body.size} bytes for shape {dims})")
    return body.reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            return candidate
    return None


def _idx_set(name: str, folder: Path, source: str) -> RawImages:
    paths = [_find_idx(folder, stem) for stem in IDX_FILES]
    arrays = [read_idx(p) for p in paths]
    x_tr, y_tr, x_te, y_te = arrays
    if x_tr.ndim != 3 or x_te.ndim != 3 or y_tr.ndim != 1 or y_te.ndim != 1:
        raise DataUnavailable(f"{name} in {folder}: the files do not hold images and labels")
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise DataUnavailable(f"{name} in {folder}: image and label counts differ")
    if name in SOURCES:  # files on disk are checked too: a differing md5 is reported, not hidden
        odd = [p.name for p, md5 in zip(paths, SOURCES[name][1]) if p.suffix == ".gz" and md5sum(p) != md5]
        if odd:
            source += f" (md5 of {', '.join(odd)} differs from the official files; contents validated)"
    classes = FASHION_CLASSES if name == "fashion-mnist" else MNIST_CLASSES
    return RawImages(name, x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64), classes, source)


def _idx_folders(name: str, data_dir: Path) -> list[Path]:
    folders = [data_dir / name]
    if name == "fashion-mnist":
        folders.append(config.SYSTEM_FASHION_MNIST)
    return folders


def _how_to_supply(name: str, data_dir: Path) -> str:
    if name in SOURCES:
        extra = " or `apt-get install dataset-fashion-mnist`" if name == "fashion-mnist" else ""
        return (f"connect to the internet once (it is cached in {data_dir / name}), or copy the four "
                f"{name} files ({', '.join(s + '.gz' for s in IDX_FILES)}) into {data_dir / name}{extra}")
    if name == "cifar10":
        return (f"connect to the internet once, or put cifar-10-python.tar.gz (md5 {CIFAR_MD5}) "
                f"into {data_dir / 'cifar10'}")
    if name == "imdb":
        return (f"connect to the internet once, or put aclImdb_v1.tar.gz (md5 {IMDB_MD5}) "
                f"into {data_dir / 'imdb'}")
    return "it is generated or bundled; nothing to supply"


_failed_downloads: dict[tuple[str, str], str] = {}


def _fetch_or_fail(key: tuple[str, str], fetch) -> None:
    """Run ``fetch`` once per process; remember a failure so --all does not retry each time."""
    if key in _failed_downloads:
        raise DataUnavailable(_failed_downloads[key])
    try:
        fetch()
    except DataUnavailable as exc:
        _failed_downloads[key] = str(exc)
        raise


@lru_cache(maxsize=8)
def load_raw(name: str, data_dir: str) -> RawImages:
    """The real dataset ``name`` (no stand-ins). Raises DataUnavailable saying what to do."""
    data_dir_p = Path(data_dir)
    if name == "digits":
        return _digits_28()
    if name in SOURCES:
        problems = []
        for folder in _idx_folders(name, data_dir_p):  # a broken copy never hides a good one
            if all(_find_idx(folder, s) for s in IDX_FILES):
                try:
                    return _idx_set(name, folder, str(folder))
                except DataUnavailable as exc:
                    problems.append(str(exc))
        base, sums = SOURCES[name]
        target = data_dir_p / name

        def fetch():
            for stem, md5 in zip(IDX_FILES, sums):
                download(base + stem + ".gz", target / f"{stem}.gz", md5)

        try:
            _fetch_or_fail((name, data_dir), fetch)
        except DataUnavailable as exc:
            looked = ", ".join(str(f) for f in _idx_folders(name, data_dir_p))
            found = f" Found but unreadable: {'; '.join(problems)}." if problems else ""
            raise DataUnavailable(f"{name} not available: {exc}. Looked in {looked}.{found} "
                                  f"To use it: {_how_to_supply(name, data_dir_p)}.") from None
        return _idx_set(name, target, base)
    if name == "cifar10":
        return _cifar10(data_dir_p)
    raise DataUnavailable(f"unknown image dataset {name!r}; choose one of {', '.join(IMAGE_DATASETS)}")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's batch files (dicts of bytes, lists and NumPy arrays) and nothing else:
    no other global can be loaded, so a crafted file cannot run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _cifar10(data_dir: Path) -> RawImages:
    folder = data_dir / "cifar10"
    batches = folder / "cifar-10-batches-py"
    archive = folder / "cifar-10-python.tar.gz"
    complete = batches.is_dir() and (marker_ok(batches, CIFAR_MD5) or all(
        (batches / f).is_file() and md5sum(batches / f) == md5 for f, md5 in CIFAR_BATCH_MD5.items()))
    if not complete:
        try:
            _fetch_or_fail(("cifar10", str(data_dir)), lambda: download(CIFAR_URL, archive, CIFAR_MD5))
            batches = extract_once(archive, folder, "cifar-10-batches-py", CIFAR_MD5)
        except DataUnavailable as exc:
            state = " (the extracted folder there is incomplete or differs from the official files)" \
                if batches.exists() else ""
            raise DataUnavailable(f"cifar10 not available: {exc}. Looked in {folder}{state}. "
                                  f"To use it: {_how_to_supply('cifar10', data_dir)}.") from None

    def read(batch: str):
        try:
            with open(batches / batch, "rb") as fh:
                d = _ArrayUnpickler(io.BytesIO(fh.read()), encoding="bytes").load()
            x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            return x, np.asarray(d[b"labels"], dtype=np.int64)
        except (OSError, pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as exc:
            raise DataUnavailable(f"cifar10: cannot read {batches / batch}: {exc}") from None

    parts = [read(f"data_batch_{i}") for i in range(1, 6)]
    x_te, y_te = read("test_batch")
    return RawImages("cifar10", np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                     x_te, y_te, CIFAR_CLASSES, str(batches))


@lru_cache(maxsize=1)
def _digits_28() -> RawImages:
    """scikit-learn's 1,797 real 8x8 digits, upscaled bilinearly to 28x28 (MNIST's size)."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0          # (N, 1, 8, 8)
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)      # keep MNIST's
    x = F.pad(x, (4, 4, 4, 4))                                                     # 4-pixel margin
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8).squeeze(1).numpy()
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    n_test = 360
    te, tr = order[:n_test], order[n_test:]
    return RawImages("digits", x[tr], y[tr], x[te], y[te], MNIST_CLASSES, "sklearn.datasets.load_digits")


def _synthetic_cifar(n_train: int = 10000, n_test: int = 2000) -> RawImages:
    """10 classes of 32x32 colour images: oriented, coloured gratings under noise.

    Only for machines with neither CIFAR-10 nor Fashion-MNIST; learnable but not trivial.
    """
    rng = np.random.default_rng(0)

    def make(n):
        y = rng.integers(0, 10, n)
        yy, xx = np.mgrid[0:32, 0:32] / 32.0
        angle = (y * np.pi / 10)[:, None, None] + rng.normal(0, 0.15, (n, 1, 1))
        freq = (2 + (y % 3))[:, None, None]
        wave = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 6.3, (n, 1, 1)))
        hue = np.stack([np.cos(y * 0.6), np.sin(y * 0.9), np.cos(y * 1.3)], 1)[:, None, None, :]
        img = 0.5 + 0.25 * wave[..., None] * (0.6 + 0.4 * hue) + rng.normal(0, 0.15, (n, 32, 32, 3))
        return (np.clip(img, 0, 1) * 255).astype(np.uint8), y.astype(np.int64)

    x_tr, y_tr = make(n_train)
    x_te, y_te = make(n_test)
    return RawImages("synthetic-cifar", x_tr, y_tr, x_te, y_te, tuple(f"pattern {i}" for i in range(10)), "generated")


def _as_cifar_shape(x: np.ndarray) -> np.ndarray:
    """Grey (N, 28, 28) -> (N, 32, 32, 3): a 2-pixel zero pad, the channel repeated, so that CIFAR
    models run unchanged."""
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    return np.repeat(x[..., None], 3, axis=-1)


# Offline stand-ins, in order of preference (TASKS.md, DATA).
STANDINS = {
    "mnist": ("fashion-mnist", "digits"),
    "fashion-mnist": ("digits",),
    "cifar10": ("fashion-mnist", "synthetic"),
    "digits": (),
}


def load_images(name: str, *, data_dir: Path | None = None, allow_fallback: bool = True,
                train_size: int | None = None, test_size: int | None = None, seed: int = 0,
                log=print) -> ImageData:
    """Load an image dataset (or its labelled stand-in), subsample, normalise, return tensors."""
    import torch

    name = name.lower()
    if name not in STANDINS:
        raise DataUnavailable(f"unknown image dataset {name!r}; choose one of {', '.join(IMAGE_DATASETS)}")
    data_dir = Path(data_dir or config.DATA_DIR)
    standin, note = False, ""
    try:
        raw = load_raw(name, str(data_dir))
        note = f"real {name} from {raw.source}"
    except DataUnavailable as exc:
        if not allow_fallback:
            raise DataUnavailable(f"{exc} (strict data was asked for with --no-fallback)") from None
        raw = None
        for alt in STANDINS[name]:
            try:
                raw = _synthetic_cifar() if alt == "synthetic" else load_raw(alt, str(data_dir))
                break
            except DataUnavailable:
                continue
        if raw is None:
            raise
        standin = True
        note = f"{name} unavailable, using stand-in {raw.name} ({raw.source})"
        log(f"[yellow]data:[/] {escape(str(exc))}")
        log(f"[yellow]data:[/] using the offline stand-in [bold]{raw.name}[/] for {name}; "
            f"figures and metrics.json say so. Pass --no-fallback to fail instead.")

    rng = np.random.default_rng(seed)

    def subset(x, y, n):
        if n is None or n >= len(y):
            return x, y
        idx = np.sort(rng.permutation(len(y))[:n])
        return x[idx], y[idx]

    x_tr, y_tr = subset(raw.x_train, raw.y_train, train_size)
    x_te, y_te = subset(raw.x_test, raw.y_test, test_size)
    if name == "cifar10" and x_tr.ndim == 3:  # grey stand-in: shaped like CIFAR after subsetting (cheaper)
        x_tr, x_te = _as_cifar_shape(x_tr), _as_cifar_shape(x_te)

    def to_tensor(x):   # uint8 (N, H, W[, C]) -> float32 (N, C, H, W) in [0, 1], one float copy only
        x = np.ascontiguousarray(x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2))
        with warnings.catch_warnings():
            # A whole dataset read from its file is a read-only buffer; torch warns that it cannot share
            # it safely. The uint8 view is never written: .float() copies it at once.
            warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
            return torch.from_numpy(x).float().div_(255.0)

    x_tr_t, x_te_t = to_tensor(x_tr), to_tensor(x_te)
    # Normalise with the training set's per-channel statistics, in place: all of the CIFAR-shaped stand-in
    # is 740 MB as float32, and each out-of-place step held another copy.
    # On one thread: a parallel reduction's summation order depends on the thread count, and so would the
    # statistics' last bits and every result trained on them (a --jobs worker has one thread, a serial run all).
    with limit_threads(1):
        mean = x_tr_t.mean(dim=(0, 2, 3))
        std = x_tr_t.std(dim=(0, 2, 3)).clamp_min(1e-6)
    for t in (x_tr_t, x_te_t):
        t.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))
    return ImageData(raw.name, name, standin, note, raw.classes, x_tr_t, torch.from_numpy(y_tr),
                     x_te_t, torch.from_numpy(y_te), tuple(mean.tolist()), tuple(std.tolist()))


def train_val_split(x, y, val_fraction: float, seed: int = 0):
    """Random split of tensors into (x_train, y_train), (x_val, y_val)."""
    import torch

    n = len(y)
    n_val = max(1, int(round(n * val_fraction)))
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    val, tr = perm[:n_val], perm[n_val:]
    return (x[tr], y[tr]), (x[val], y[val])


# ----------------------------------------------------------------------------- IMDb
@dataclass
class TextData:
    name: str
    requested: str
    standin: bool
    note: str
    train_texts: list[str]
    train_labels: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray

    @property
    def label(self) -> str:
        return f"{self.name} (stand-in for {self.requested})" if self.standin else self.name


def _read_imdb(root: Path) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    out = []
    for split in ("train", "test"):
        texts, labels = [], []
        for lab, sub in ((1, "pos"), (0, "neg")):
            files = sorted((root / split / sub).glob("*.txt"))
            if not files:
                raise DataUnavailable(f"imdb: {root / split / sub} holds no reviews (an incomplete extraction?)")
            try:
                texts += [f.read_text(encoding="utf-8", errors="replace").replace("<br />", " ") for f in files]
            except OSError as exc:
                raise DataUnavailable(f"imdb: cannot read a review in {root / split / sub}: {exc}") from None
            labels += [lab] * len(files)
        out += [texts, np.asarray(labels, dtype=np.int64)]
    return tuple(out)


def load_imdb(*, data_dir: Path | None = None, allow_fallback: bool = True, seed: int = 0,
              log=print) -> TextData:
    """The Large Movie Review Dataset (25k/25k reviews), or the generated stand-in corpus."""
    data_dir = Path(data_dir or config.DATA_DIR)
    folder = data_dir / "imdb"
    root = folder / "aclImdb"
    try:
        if not marker_ok(root, IMDB_MD5):  # a folder without the marker may be half extracted
            archive = folder / "aclImdb_v1.tar.gz"
            try:
                _fetch_or_fail(("imdb", str(data_dir)), lambda: download(IMDB_URL, archive, IMDB_MD5))
            except DataUnavailable as exc:
                state = " (the folder aclImdb there was not extracted by this program and is not used)" \
                    if root.exists() else ""
                raise DataUnavailable(f"imdb not available: {exc}. Looked in {folder}{state}. "
                                      f"To use it: {_how_to_supply('imdb', data_dir)}.") from None
            root = extract_once(archive, folder, "aclImdb", IMDB_MD5)
        tr_x, tr_y, te_x, te_y = _read_imdb(root)
        return TextData("imdb", "imdb", False, f"real imdb from {root}", tr_x, tr_y, te_x, te_y)
    except DataUnavailable as exc:
        if not allow_fallback:
            raise DataUnavailable(f"{exc} (strict data was asked for with --no-fallback)") from None
        log(f"[yellow]data:[/] {escape(str(exc))}")
        log("[yellow]data:[/] using the generated sentiment corpus as the offline stand-in for imdb.")
        tr_x, tr_y = synthetic_reviews(4000, seed=seed)
        te_x, te_y = synthetic_reviews(1000, seed=seed + 1)
        return TextData("synthetic-reviews", "imdb", True, "imdb unavailable, generated sentiment corpus",
                        tr_x, tr_y, te_x, te_y)


_POSITIVE = ("wonderful", "brilliant", "moving", "superb", "delightful", "gripping", "charming",
             "excellent", "funny", "beautiful", "memorable", "clever")
_NEGATIVE = ("boring", "awful", "dull", "clumsy", "tedious", "terrible", "forgettable", "weak",
             "predictable", "messy", "painful", "bland")
_NEUTRAL = ("the film", "the plot", "the cast", "the director", "the ending", "the script", "the music",
            "this movie", "the story", "the pacing", "the dialogue", "the camera work")
# Neutral filler sentences are built from these parts (subject, verb phrase, detail), so the
# corpus has a few hundred distinct words of which only the opinion words carry sentiment.
_FILLER_SUBJECTS = ("i", "my friend", "my sister", "the audience", "a neighbour", "my partner", "the critic",
                    "everyone in the row", "a colleague", "the usher")
_FILLER_VERBS = ("watched it", "saw it", "talked about it", "bought a ticket", "read about it", "waited for it",
                 "heard of it", "rented it", "found it online", "remembered it")
_FILLER_DETAILS = ("on a sunday", "last winter", "in a small cinema", "after dinner", "on a long flight",
                   "with two friends", "at a festival", "on a rainy evening", "during the holidays",
                   "before the news", "in the afternoon", "on television", "in the city centre", "at home")
_FILLER_FACTS = ("it runs about two hours", "the trailer came out in spring", "it is based on a novel",
                 "there are a few familiar faces", "it was shot in three countries", "the studio is small",
                 "the title changed twice", "it was released last year", "the poster shows a train",
                 "the sequel is planned", "most scenes take place at night", "the book has four chapters")


def _fillers(rng, n: int) -> list[str]:
    """``n`` neutral sentences (drawn in one go: whole-array draws, no per-word calls)."""
    fact, s, v, d, f = rng.random(n) < 0.5, *(rng.integers(0, len(w), n) for w in (
        _FILLER_SUBJECTS, _FILLER_VERBS, _FILLER_DETAILS, _FILLER_FACTS))
    return [_FILLER_FACTS[f[i]] if fact[i] else f"{_FILLER_SUBJECTS[s[i]]} {_FILLER_VERBS[v[i]]} {_FILLER_DETAILS[d[i]]}"
            for i in range(n)]


def _opinion(rng) -> tuple[str, int]:
    """One opinion phrase and its polarity (+1 / -1): plain, negated ("was not good") or a
    contrast ("… was good at first , but the ending was awful , truly awful"), where the clause
    after "but" decides and, said twice, also outweighs the first in a word count."""
    positive = rng.random() < 0.5
    own, other = (_POSITIVE, _NEGATIVE) if positive else (_NEGATIVE, _POSITIVE)
    polarity = 1 if positive else -1
    kind = rng.random()
    if kind < 0.25:   # negation: the word's polarity is flipped
        return f"{rng.choice(_NEUTRAL)} was not {rng.choice(other)}", polarity
    if kind < 0.5:    # contrast: opposite first impression, then the verdict after "but"
        w = str(rng.choice(own))
        return (f"{rng.choice(_NEUTRAL)} seemed {rng.choice(other)} at first , but {rng.choice(_NEUTRAL)} was "
                f"{w} , truly {w}"), polarity
    return f"{rng.choice(_NEUTRAL)} was {rng.choice(own)}", polarity


def synthetic_reviews(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """A generated sentiment corpus: the offline stand-in for IMDb.

    Each review is mostly neutral text (3 to 14 filler sentences, about 20 to 150 tokens, median 78)
    with one to three opinion phrases put at random positions: plain ("the plot was clever"),
    negated ("the cast was not boring", positive) or contrasting ("the film seemed dull at first ,
    but the ending was superb , truly superb", positive). The label is the sign of the summed
    polarities, which is also the sign of (positive - negative) opinion words when "not <word>"
    flips a word. The sentiment sits anywhere in the text, so a model that keeps only what it
    read last (the end of the review) must carry it over many neutral words, while a model that
    attends can look it up; word order matters (negation, contrast).
    """
    texts, labels = _synthetic_reviews_cached(n, seed)
    return list(texts), labels.copy()  # copies: callers may change them; the cache must not


@lru_cache(maxsize=4)
def _synthetic_reviews_cached(n: int, seed: int) -> tuple[tuple[str, ...], np.ndarray]:
    # Generated one phrase at a time (about a second for the stand-in's 5,000 reviews): made once
    # per process, then reused by every IMDb task of a run.
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    while len(texts) < n:
        sents = _fillers(rng, int(rng.integers(3, 15)))
        score = 0
        for _ in range(int(rng.choice([1, 3], p=[0.6, 0.4]))):
            phrase, polarity = _opinion(rng)
            score += polarity
            sents.insert(int(rng.integers(0, len(sents) + 1)), phrase)
        texts.append(" . ".join(sents) + " .")
        labels.append(int(score > 0))
    return tuple(texts), np.asarray(labels, dtype=np.int64)


