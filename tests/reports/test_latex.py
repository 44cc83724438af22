"""The course report: text from results is escaped for LaTeX, markdown becomes LaTeX, pdflatex compiles it."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from utils.latex_report import build_report, escape_latex, markdown_to_latex


def test_escape_latex_specials_and_symbols():
    assert escape_latex("50% of $x_1 & {y}#~^\\") == r"50\% of \$x\_1 \& \{y\}\#\~{}\^{}\textbackslash{}"
    assert escape_latex("a → b ± 2 ≈ 3") == r"a $\to$ b $\pm$ 2 $\approx$ 3"
    assert escape_latex("\U0001F642") == "?"


def test_markdown_to_latex_headings_emphasis_tables_and_no_raw_html():
    tex = markdown_to_latex("## Result\nA **bold** and `code_x` <b>raw</b>\n\n| a | b |\n|---|---|\n| 1 | 2% |\n")
    assert r"\paragraph{Result}" in tex and r"\textbf{bold}" in tex and r"\texttt{code\_x}" in tex
    assert r"\textless{}b\textgreater{}raw" in tex                  # html is text, never markup
    assert r"\begin{tabular}{@{}ll@{}}" in tex and r"1 & 2\% \\" in tex


class _Task:
    def __init__(self, id_, title, target=None):
        self.id, self.title, self.section, self.dirname, self.target = id_, title, id_[0], f"{id_}_x", target


def test_report_compiles_with_pdflatex(tmp_path):
    if shutil.which("pdflatex") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must compile the report: install texlive-latex-recommended")
        pytest.skip("pdflatex is not installed here (apt-get install texlive-latex-recommended)")
    folder = tmp_path / "1.1_x"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"status": "done", "mode": "quick", "seed": 1, "seconds": 2.0,
                                                     "headline": "loss 50% & falling_fast", "figures": []}))
    (folder / "analysis.md").write_text("# 1.1 x\n\n## Result\nThe *loss* fell by 3 ± 1 points; `x_1` ≥ 0.\n")
    ok, message = build_report(tmp_path, [_Task("1.1", "Gates & $things$")], {"1": "Foundations"})
    assert ok, message
    assert (tmp_path / "report.pdf").stat().st_size > 1000
