"""The course report: results/report.tex (sections 1–8, per task its key figure, its measured
numbers, its analysis and the targets table) compiled to report.pdf with pdflatex when present.

Analysis markdown is turned into LaTeX from markdown-it-py's token stream (headings, paragraphs,
emphasis, code, lists, tables); every piece of text from results is escaped for LaTeX.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from utils.reports import collect, run_header
from utils.results import write_text

_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
            "%": r"\%", "_": r"\_", "^": r"\^{}", "~": r"\~{}", "<": r"\textless{}", ">": r"\textgreater{}",
            "|": r"\textbar{}"}
_UNICODE = {"→": r"$\to$", "←": r"$\leftarrow$", "≈": r"$\approx$", "±": r"$\pm$", "×": r"$\times$",
            "≥": r"$\geq$", "≤": r"$\leq$", "√": r"$\surd$", "Δ": r"$\Delta$", "μ": r"$\mu$", "σ": r"$\sigma$",
            "β": r"$\beta$", "λ": r"$\lambda$", "ρ": r"$\rho$", "α": r"$\alpha$", "γ": r"$\gamma$",
            "ε": r"$\varepsilon$", "η": r"$\eta$", "θ": r"$\theta$", "π": r"$\pi$", "∂": r"$\partial$",
            "∑": r"$\sum$", "·": r"$\cdot$", "−": "-", "–": "--", "—": "---", "…": r"\ldots{}", "′": "'",
            "“": "``", "”": "''", "‘": "`", "’": "'", "²": r"$^2$", "³": r"$^3$", "⁻": r"$^-$", "¹": r"$^1$",
            "⊙": r"$\odot$", "ᵀ": r"$^T$", "∞": r"$\infty$", "≠": r"$\neq$", "⌊": r"$\lfloor$", "⌋": r"$\rfloor$",
            "✓": "yes", "✗": "no", "°": r"$^\circ$", "∈": r"$\in$", "≪": r"$\ll$", "≫": r"$\gg$", "σ²": r"$\sigma^2$"}


def escape_latex(text: object) -> str:
    """Plain text → LaTeX source that prints it (specials escaped, common symbols mapped)."""
    out = []
    for ch in str(text):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch in _UNICODE:
            out.append(_UNICODE[ch])
        elif ord(ch) < 128 or ch in "éèêëàâäôöûüçñÉÈÀÖÜßåø":
            out.append(ch)
        elif ch.isspace():
            out.append(" ")
        else:
            out.append("?")  # a character pdflatex's default fonts cannot show
    return "".join(out)


def markdown_to_latex(text: str, headings: dict[str, str] | None = None) -> str:
    """The subset of markdown the analyses use, as LaTeX. ``headings`` maps h1/h2/h3 to a LaTeX
    sectioning command (default: all \\paragraph, for analyses nested inside a task's subsection)."""
    headings = headings or {}
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark", {"html": False}).enable("table").parse(text)
    out: list[str] = []
    row: list[str] = []
    for tok in tokens:
        t = tok.type
        if t == "heading_open":
            out.append("\n\\" + headings.get(tok.tag, "paragraph") + "{")
        elif t == "heading_close":
            out.append("}\n")
        elif t == "paragraph_close":
            out.append("\n\n")
        elif t == "bullet_list_open":
            out.append("\\begin{itemize}\n")
        elif t == "bullet_list_close":
            out.append("\\end{itemize}\n")
        elif t == "ordered_list_open":
            out.append("\\begin{enumerate}\n")
        elif t == "ordered_list_close":
            out.append("\\end{enumerate}\n")
        elif t == "list_item_open":
            out.append("\\item ")
        elif t in ("fence", "code_block"):
            out.append("\\begin{small}\\begin{verbatim}\n" + tok.content.replace("\\end{verbatim}", "") +
                       "\\end{verbatim}\\end{small}\n")
        elif t == "table_open":
            out.append("\\begin{center}\\small\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n"
                       "\\begin{tabular}{@{}TABLESPEC@{}}\\toprule\n")
        elif t == "table_close":
            out.append("\\bottomrule\\end{tabular}}\\end{center}\n")
        elif t == "tr_open":
            row = []
        elif t == "tr_close":
            out.append(" & ".join(row) + " \\\\\n")
        elif t == "thead_close":
            out.append("\\midrule\n")
        elif t == "inline":
            rendered = _inline(tok.children or [])
            if row is not None and _inside(tokens, tok, ("th_open", "td_open")):
                row.append(rendered)
            else:
                out.append(rendered)
        elif t == "hr":
            out.append("\n\\medskip\\hrule\\medskip\n")
    latex = "".join(out)
    # Each table's column spec: as many left-aligned columns as its widest row has cells.
    while "TABLESPEC" in latex:
        start = latex.index("TABLESPEC")
        end = latex.find("\\end{tabular}", start)
        body = latex[start:end]
        cols = max((line.count(" & ") + 1 for line in body.split("\\\\\n")), default=1)
        latex = latex[:start] + "l" * cols + latex[start + len("TABLESPEC"):]
    return latex


def _inside(tokens, tok, openers) -> bool:
    i = tokens.index(tok)
    return i > 0 and tokens[i - 1].type in openers


def _inline(children) -> str:
    out = []
    for c in children:
        if c.type == "text":
            out.append(escape_latex(c.content))
        elif c.type == "code_inline":
            out.append("\\texttt{" + escape_latex(c.content) + "}")
        elif c.type == "strong_open":
            out.append("\\textbf{")
        elif c.type == "em_open":
            out.append("\\emph{")
        elif c.type in ("strong_close", "em_close"):
            out.append("}")
        elif c.type in ("softbreak", "hardbreak"):
            out.append(" ")
    return "".join(out)


PREAMBLE = r"""\documentclass[10pt,a4paper]{article}
\usepackage[utf8]{inputenc}
\usepackage[margin=2cm]{geometry}
\usepackage{graphicx}
\usepackage{booktabs}
\usepackage{amssymb}
\usepackage[hidelinks]{hyperref}
\setlength{\parindent}{0pt}\setlength{\parskip}{0.4em}
"""


def _heading(level: str, text: str) -> str:
    """An unnumbered heading that still enters the table of contents: the text carries the catalogue's
    own number (LaTeX's numbering on top printed "1.3 1.3 Universal approximation")."""
    t = escape_latex(text)
    return f"\\{level}*{{{t}}}\\addcontentsline{{toc}}{{{level}}}{{{t}}}"


def build_tex(results_dir: Path, tasks, sections: dict[str, str]) -> str:
    entries = collect(results_dir, tasks)
    h = run_header(entries)
    lines = [PREAMBLE, "\\title{Deep-learning course: experiment report}",
             "\\date{" + escape_latex(h["when"] or "not run yet") + "}", "\\begin{document}\\maketitle",
             "\\small Modes: " + escape_latex(", ".join(h["modes"]) or "--") + ". Seeds: " +
             escape_latex(", ".join(h["seeds"]) or "--") + ". Devices: " + escape_latex(", ".join(h["devices"]) or "--") +
             ". Data used: " + escape_latex("; ".join(h["data"]) or "--") + ".\\normalsize\n"]
    if h["standin_tasks"]:
        lines.append("\\fbox{\\parbox{0.95\\linewidth}{\\textbf{Stand-in data.} Tasks " +
                     escape_latex(", ".join(h["standin_tasks"])) + " ran on an offline stand-in; their numbers "
                     "are not comparable with the catalogue's targets.}}\n")
    targeted = [e for e in entries if e.target_text]
    if targeted:
        lines.append("\\section*{Targets}\\begin{tabular}{@{}lp{8cm}l@{}}\\toprule task & target & verdict \\\\\\midrule")
        lines += [f"{escape_latex(e.id)} & {escape_latex(e.target_text)} & {escape_latex(e.verdict)} \\\\"
                  for e in targeted]
        lines.append("\\bottomrule\\end{tabular}\n")
    lines.append("\\tableofcontents\\clearpage")
    section = None
    for e in entries:
        if e.section != section:
            section = e.section
            lines.append(_heading("section", f"{section} {sections.get(section, '')}"))
        lines.append(_heading("subsection", f"{e.id} {e.title}"))
        facts = [f"status: {e.status}"]
        if e.headline:
            facts.append(e.headline)
        if e.metrics.get("mode"):
            facts.append(f"{e.metrics['mode']} mode, seed {e.metrics.get('seed')}, {e.seconds or 0:.0f} s")
        if e.metrics.get("dataset_label"):
            facts.append(f"data: {e.metrics['dataset_label']}")
        if e.target_text:
            facts.append(f"target: {e.target_text} ({e.verdict}: {e.verdict_why})")
        lines.append("\\textit{" + escape_latex(" · ".join(facts)) + "}\n")
        if e.error:
            lines.append("\\textbf{Error:} \\texttt{" + escape_latex(e.error[:500]) + "}\n")
        if e.figures:
            stem, ext = e.figures[0].rsplit(".", 1)
            lines.append("\\begin{center}\\includegraphics[width=0.85\\linewidth,height=0.4\\textheight,"
                         f"keepaspectratio]{{{{{e.dirname}/{stem}}}.{ext}}}\\end{{center}}")
        if e.analysis:
            body = e.analysis.split("\n", 1)[1] if e.analysis.startswith("# ") else e.analysis
            lines.append(markdown_to_latex(body))
    lines.append("\\end{document}\n")
    return "\n".join(lines)


def build_report(results_dir: Path, tasks, sections: dict[str, str], *, timeout: float = 180.0) -> tuple[bool, str]:
    """Write report.tex (and theory.tex from docs/theory.md) and compile them. Returns (ok, message)."""
    results_dir = Path(results_dir)
    ok, message = compile_tex(results_dir / "report.tex", build_tex(results_dir, tasks, sections), timeout)
    theory = Path(__file__).resolve().parents[1] / "docs" / "theory.md"
    if theory.exists():
        body = markdown_to_latex(theory.read_text(encoding="utf-8"),
                                 {"h1": "section*", "h2": "subsection*", "h3": "subsubsection*"})
        t_ok, t_message = compile_tex(results_dir / "theory.tex", PREAMBLE + "\\begin{document}\n" + body +
                                      "\n\\end{document}\n", timeout)
        ok, message = ok and t_ok, message + "\n" + t_message
    return ok, message


def compile_tex(tex: Path, source: str, timeout: float = 180.0) -> tuple[bool, str]:
    """Write ``source`` to ``tex`` and run pdflatex on it twice (for references)."""
    results_dir = tex.parent
    write_text(tex, source)
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        return True, (f"wrote {tex}; pdflatex is not installed, so no PDF was made "
                      f"(install TeX Live, e.g. `apt-get install texlive-latex-recommended`, and run --report --latex again)")
    for _ in range(2):
        try:
            run = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=results_dir,
                                 capture_output=True, text=True, timeout=timeout, errors="replace")
        except subprocess.TimeoutExpired:
            return False, f"wrote {tex}; pdflatex did not finish within {timeout:.0f} s"
        except OSError as exc:
            return False, f"wrote {tex}; pdflatex could not run: {exc}"
        if run.returncode != 0:
            tail = "\n".join(line for line in run.stdout.splitlines() if line.startswith("!"))[:800]
            return False, f"wrote {tex}; pdflatex failed: {tail or 'see ' + str(tex.with_suffix('.log'))}"
    return True, f"wrote {tex} and {tex.with_suffix('.pdf')}"
