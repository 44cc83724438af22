"""Run presets and paths.

nanoGPT-style configuration: a typed dataclass of defaults, presets that override a few of
its fields, and overrides (from the command line or code) that are checked against the
field names so that a typo fails loudly instead of being silently ignored.

Choose the default mode here (DEFAULT_MODE), with the environment variable DL_MODE, or per
run with ``python main.py --mode hybrid``. Tasks read the shared budgets below and, where a
task needs its own per-mode numbers, ``ctx.pick(tiny=..., quick=..., hybrid=..., full=...)``.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

# ---------------------------------------------------------------------------------------
# The default mode: edit this line, or set DL_MODE, or pass --mode.
DEFAULT_MODE = "quick"
# ---------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("DL_DATA_DIR", ROOT / "data"))
RESULTS_DIR = Path(os.environ.get("DL_RESULTS_DIR", ROOT / "results"))
# Debian's dataset-fashion-mnist package installs the real files here.
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_SEED = 42
# Image datasets a user may pick with --dataset (see utils/data.py for sources and stand-ins).
IMAGE_DATASETS = ("mnist", "fashion-mnist", "cifar10", "digits")


class ConfigError(ValueError):
    """A bad mode name, override key or override value."""


@dataclass(frozen=True)
class Preset:
    """Budgets shared by every task. The defaults are the FULL mode's values."""

    name: str = "full"
    epochs: int = 20                 # epochs of a standard image-classifier run
    train_size: int | None = None    # cap on training examples (None: the whole set)
    test_size: int | None = None     # cap on test examples (None: the whole set)
    val_fraction: float = 0.1        # share of the training set held out for validation
    batch_size: int = 128
    seeds: int = 3                   # repeats for comparisons that report a spread
    steps: int = 3000                # iterations for small synthetic problems
    eval_batch_size: int = 1000
    figure_dpi: int = 300            # PNG resolution: print quality in HYBRID/FULL
    figure_crop: bool = True         # crop each PNG to what was drawn (bbox "tight"): a second layout pass


PRESETS: dict[str, Preset] = {
    "full": Preset(),
    "hybrid": Preset(name="hybrid", epochs=8, train_size=None, test_size=None, seeds=3, steps=1500),
    # QUICK draws at 150 dpi: sharp at 100% on a laptop screen, and a quarter of the pixels to
    # encode (300 dpi spent about a fifth of the whole QUICK catalogue's time writing PNGs).
    "quick": Preset(name="quick", epochs=2, train_size=12000, test_size=2000, seeds=1, steps=400, figure_dpi=150),
    # Smoke preset for the test suite: every task end to end in seconds; numbers meaningless. Its
    # figures are drawn in full but not cropped: the crop's extra layout pass was half of each
    # save, and drawing half of the end-to-end tests' time; nobody looks at a tiny figure.
    "tiny": Preset(name="tiny", epochs=1, train_size=600, test_size=300, seeds=1, steps=30,
                   batch_size=64, eval_batch_size=300, figure_dpi=60, figure_crop=False),
}
MODES = ("quick", "hybrid", "full")  # the modes offered to users; "tiny" is for tests


def _coerce(field: dataclasses.Field, raw: object) -> object:
    """Turn an override (often a string from the command line) into the field's type."""
    if not isinstance(raw, str):
        return raw
    kind = str(field.type)
    if raw.lower() == "none" and "None" in kind:
        return None
    if kind == "bool":
        if raw.lower() in ("true", "yes", "on", "1"):
            return True
        if raw.lower() in ("false", "no", "off", "0"):
            return False
        raise ConfigError(f"{field.name} must be true or false, got {raw!r}")
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
    except ValueError:
        raise ConfigError(f"{field.name} must be a number, got {raw!r}") from None
    return raw


def get_preset(mode: str | None = None, **overrides: object) -> Preset:
    """The preset for ``mode`` (default: DL_MODE, then DEFAULT_MODE) with overrides applied.

    Unknown modes and unknown override keys raise ConfigError.
    """
    mode = (mode or os.environ.get("DL_MODE") or DEFAULT_MODE).lower()
    if mode not in PRESETS:
        raise ConfigError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    known = {f.name: f for f in fields(Preset)}
    unknown = sorted(set(overrides) - set(known) - {"name"})
    if unknown or "name" in overrides:
        bad = unknown or ["name"]
        raise ConfigError(f"unknown config key(s) {', '.join(bad)}; known: {', '.join(k for k in known if k != 'name')}")
    values = {k: _coerce(known[k], v) for k, v in overrides.items()}
    for key, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value}")
        if key == "val_fraction":
            if not 0 < value < 1:
                raise ConfigError(f"val_fraction must be between 0 and 1 (exclusive), got {value}")
        elif value <= 0:
            raise ConfigError(f"{key} must be positive, got {value}")
    return dataclasses.replace(PRESETS[mode], **values)


PRESET_KEYS = frozenset(f.name for f in fields(Preset))


def preset_overrides(overrides: dict[str, object]) -> dict[str, object]:
    """The overrides that set shared preset values (the rest set tasks' budget values)."""
    return {k: v for k, v in overrides.items() if k in PRESET_KEYS}


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """``["epochs=3", "batch_size=64"]`` -> dict; malformed pairs raise ConfigError."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out
