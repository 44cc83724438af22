"""2.8: the derivation's equations hold numerically, the .tex compiles, and the write-up reports pass/fail
from the numbers."""
from __future__ import annotations

import shutil

import pytest

import config
from experiments.s2_optimization.t2_8_backprop_derivation import (TEX, TOLERANCE, Result, backprop_equation_checks,
                                                                  compile_latex, reference_of, write_up)


def test_backprop_equations_hold():
    checks = backprop_equation_checks(seed=1, sizes=(4, 5, 3), batch=5)
    assert len(checks) == 8
    for name, err in checks.items():
        assert err <= TOLERANCE[reference_of(name)], name
    # autograd sees the same float64 products: agreement at round-off level
    assert max(e for n, e in checks.items() if reference_of(n) == "torch") < 1e-14


def test_a_wrong_equation_is_caught():
    """A deliberately wrong step (h so large the central difference is inaccurate) fails the tolerance."""
    checks = backprop_equation_checks(seed=0, sizes=(3, 4, 3), batch=4, eps=0.5)
    fd = [e for n, e in checks.items() if reference_of(n) == "finite differences"]
    assert max(fd) > TOLERANCE["finite differences"]


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex is not installed: the derivation cannot be compiled on this machine")
def test_derivation_tex_compiles(tmp_path):
    pdf, message = compile_latex(config.ROOT / TEX, tmp_path)
    assert pdf is not None, message
    assert pdf.exists() and pdf.stat().st_size > 10_000
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_missing_pdflatex_is_reported_not_raised(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    pdf, message = compile_latex(config.ROOT / TEX, tmp_path)
    assert pdf is None and "not installed" in message


def _result(checks):
    return Result(checks, {n: reference_of(n) for n in checks}, dict(TOLERANCE), True, "rendered with pdflatex",
                  [5, 7, 6, 4], 8, 1e-6)


def test_write_up_reports_every_check_passing():
    text = write_up(_result({"weight gradients vs finite differences": 2e-10, "dJ/dZ_L vs torch autograd": 1e-17}))
    assert "All 2 checks are within tolerance" in text and "FAIL" not in text
    assert "2.0e-10" in text and "backprop_derivation.pdf" in text


def test_write_up_reports_a_failed_check():
    text = write_up(_result({"weight gradients vs finite differences": 3e-4, "dJ/dZ_L vs torch autograd": 1e-17}))
    assert "1 of 2 checks exceed their tolerance" in text and "**FAIL**" in text
    assert "within tolerance" not in text
