"""Hostile input never shows a traceback: bad command lines and menu answers exit 0, 1 or 2."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

BAD_ARGS = [
    ["9.9"], ["0"], ["99"], ["1.99"], ["-1"], ["1..1"], ["..."], ["4.3.1"], ["abc"], ["--mode"], ["--mode", ""],
    ["--mode", "QUICKER"], ["--seed"], ["--seed", "1e3"], ["--seed", "0x10"], ["--seed", "9" * 40],
    ["--seed", "-1"], ["--seed", str(2**32)], ["--device", "gpu"], ["--dataset", ""], ["--dataset", "MNIST!"],
    ["--set"], ["--set", "=3"], ["--set", "epochs=abc", "3.1"], ["--set", "batch_size=0", "3.1"],
    ["--set", "batch_size=-5", "3.1"], ["--set", "seeds=1e999", "3.1"], ["--set", "train_size=nan", "3.1"],
    ["--set", "val_fraction=nan", "3.1"], ["--set", "val_fraction=1.5", "3.1"], ["--set", "foo=bar", "3.1"],
    ["--results", ""], ["--data", ""], ["--redraw", "9.9"], ["--list", "--mode", "warp"], ["\u2603"],
    ["\uff11.\uff11"], ["3.1\n"], ["--bogus=1"], ["-x"], ["--resume", "9.9"], ["--no-fallback", "12"], [""],
    [" "], ["x" * 100_000], ["[/]"], ["--results", "runs[/]", "9.9"], ["--list", "--results", "{tmp}/runs[v2]"],
    [b"\xff\xfe"], ["--set", "epochs=[/]", "3.1"], ["\x1b[2J"],
]
MENU_INPUTS = [
    "[/]\n", "[bold]x[/bold]\n", "m\n[/]\n", "\x00\n", "\x1b[2J\n", "\x03\n", "\u00e9\n", "\U0001F642\n",
    "1.\nb\nq\n", "99\n", "1\n99\nb\n0\n", "m\n", "x" * 200_000 + "\n", b"\xff\xfe\n", "\r\n", "   \n", "q",
    "Q\n", "exit\n", "1\n1.9\n", "8.8\n", "-1\n", "1e3\n", "m\nQUICK\nq\n", "1\n[/]\nb\nq\n", "m\n\n\nq\n",
    "a" * 10 + "\n" * 5, "\t\n", "3.\n9\nb\n",
]


def _run(args, stdin, tmp_path):
    env = dict(os.environ, DL_OFFLINE="1", COLUMNS="100")
    args = [a.replace("{tmp}", str(tmp_path)) if isinstance(a, str) else a for a in args]
    if "--results" not in args:
        args = [*args, "--results", str(tmp_path / "results")]
    data = stdin.encode("utf-8", "surrogatepass") if isinstance(stdin, str) else stdin
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, input=data, capture_output=True,
                          timeout=60, env=env)


@pytest.mark.parametrize("args", BAD_ARGS, ids=range(len(BAD_ARGS)))
def test_bad_command_lines(args, tmp_path):
    r = _run(args, b"", tmp_path)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    assert r.returncode in (0, 1, 2), out[-1000:]
    assert "Traceback" not in out


@pytest.mark.parametrize("answers", MENU_INPUTS, ids=range(len(MENU_INPUTS)))
def test_bad_menu_input(answers, tmp_path):
    r = _run([], answers, tmp_path)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    assert r.returncode == 0, out[-1000:]
    assert "Traceback" not in out and "bye" in out
    assert not list((tmp_path / "results").glob("*_*/metrics.json"))  # no answer above runs a task


def test_there_are_at_least_sixty_probes():
    assert len(BAD_ARGS) + len(MENU_INPUTS) >= 60


def test_one_dot_opens_the_section_instead_of_running_it(tmp_path):
    r = _run([], "1.\nq\n", tmp_path)
    out = r.stdout.decode()
    assert "1 Foundations" in out and "Traceback" not in out
