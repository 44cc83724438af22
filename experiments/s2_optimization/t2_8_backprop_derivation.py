"""2.8 Backpropagation derivation: the complete derivation for an MLP with softmax cross-entropy lives
in `docs/backprop_derivation.tex`; this task compiles it with pdflatex (when installed), summarises it,
and checks its final equations numerically — coded literally, on a random tanh MLP in float64 —
against torch autograd and central finite differences.
"""
from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import config
from utils.plotting import plt
from utils.report import table

TEX = Path("docs") / "backprop_derivation.tex"
SIZES = (5, 7, 6, 4)     # layer widths of the checked network
BATCH = 8
FD_STEP = 1e-6
# Tolerances: autograd computes the same float64 products, so only round-off separates them; a central
# difference with step h adds O(h²) truncation plus about machine-ε/h of round-off.
TOLERANCE = {"torch": 1e-12, "finite differences": 1e-7}

BUDGET = {"tiny": {"fd_step": FD_STEP}, "quick": {"fd_step": FD_STEP}, "hybrid": {"fd_step": FD_STEP},
          "full": {"fd_step": FD_STEP}}


@dataclass
class Result:
    checks: dict[str, float]     # equation -> max absolute error
    reference: dict[str, str]    # equation -> "torch" (autograd, cross_entropy) | "finite differences"
    tolerance: dict[str, float]  # reference -> tolerance
    pdf_rendered: bool
    pdf_note: str                # how the PDF was (or why it was not) rendered
    sizes: list[int]
    batch: int
    fd_step: float


def backprop_equation_checks(seed: int = 0, sizes=SIZES, batch: int = BATCH, eps: float = FD_STEP) -> dict[str, float]:
    """Check the derivation's key equations on a random tanh MLP with softmax cross-entropy (float64).

    Implements the equations exactly as docs/backprop_derivation.tex writes them (row-per-example matrices):
        Z_l = A_{l-1} W_lᵀ + 1 b_lᵀ,  A_l = tanh(Z_l),  P = softmax(Z_L),  J = −(1/B) Σ log P[n, y_n]
        Δ_L = (P − Y)/B,  Δ_l = (Δ_{l+1} W_{l+1}) ⊙ tanh′(Z_l),  ∂J/∂W_l = Δ_lᵀ A_{l-1},  ∂J/∂b_l = Δ_lᵀ 1
    and returns the max absolute error of each against torch autograd and central finite differences.
    """
    rng = np.random.default_rng(seed)
    L = len(sizes) - 1
    W = [rng.normal(0, 1 / math.sqrt(a), (b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
    b = [rng.normal(0, 0.1, n) for n in sizes[1:]]
    X = rng.standard_normal((batch, sizes[0]))
    y = rng.integers(0, sizes[-1], batch)
    Y = np.eye(sizes[-1])[y]
    rows = np.arange(batch)

    def loss_of_logits(logits):
        P = np.exp(logits - logits.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        return P, float(-np.mean(np.log(P[rows, y])))

    def forward(W, b, X):
        A, Z = [X], []
        for l in range(L):
            Z.append(A[-1] @ W[l].T + b[l])
            A.append(np.tanh(Z[-1]) if l < L - 1 else None)
        return A, Z, *loss_of_logits(Z[-1])

    A, Z, P, J = forward(W, b, X)
    delta = [None] * L
    delta[L - 1] = (P - Y) / batch                                        # Δ_L = (P − Y)/B
    for l in range(L - 2, -1, -1):
        delta[l] = (delta[l + 1] @ W[l + 1]) * (1 - np.tanh(Z[l]) ** 2)   # Δ_l = (Δ_{l+1} W_{l+1}) ⊙ σ′(Z_l)
    dW = [delta[l].T @ A[l] for l in range(L)]                             # ∂J/∂W_l = Δ_lᵀ A_{l-1}
    db = [delta[l].sum(axis=0) for l in range(L)]                          # ∂J/∂b_l = Δ_lᵀ 1

    # torch autograd on the same network: gradients of J wrt every Z_l, W_l, b_l
    Wt = [torch.tensor(w, requires_grad=True) for w in W]
    bt = [torch.tensor(v, requires_grad=True) for v in b]
    a = torch.tensor(X)
    Zt = []
    for l in range(L):
        z = a @ Wt[l].T + bt[l]
        z.retain_grad()
        Zt.append(z)
        a = torch.tanh(z)
    torch.nn.functional.cross_entropy(Zt[-1], torch.tensor(y)).backward()

    def central_difference(f, array):
        """∂f/∂array by central differences, perturbing `array` in place one entry at a time."""
        g = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            original = array[idx]
            array[idx] = original + eps
            plus = f()
            array[idx] = original - eps
            minus = f()
            array[idx] = original
            g[idx] = (plus - minus) / (2 * eps)
        return g

    logits = Z[-1].copy()
    fd_logits = central_difference(lambda: loss_of_logits(logits)[1], logits)
    fd_W = [central_difference(lambda: forward(W, b, X)[3], w) for w in W]
    fd_b = [central_difference(lambda: forward(W, b, X)[3], v) for v in b]

    def max_err(ours, theirs):
        return float(max(np.max(np.abs(o - t)) for o, t in zip(ours, theirs)))

    return {
        "dJ/dZ_L = (softmax − onehot)/B vs finite differences": max_err([delta[-1]], [fd_logits]),
        "dJ/dZ_L vs torch autograd": max_err([delta[-1]], [Zt[-1].grad.numpy()]),
        "delta recursion Δ_l vs torch autograd (every layer)": max_err(delta, [z.grad.numpy() for z in Zt]),
        "weight gradients Δ_lᵀ A_{l-1} vs torch autograd": max_err(dW, [w.grad.numpy() for w in Wt]),
        "bias gradients Δ_lᵀ 1 vs torch autograd": max_err(db, [v.grad.numpy() for v in bt]),
        "weight gradients vs finite differences": max_err(dW, fd_W),
        "bias gradients vs finite differences": max_err(db, fd_b),
        "loss J vs torch": abs(J - float(torch.nn.functional.cross_entropy(torch.tensor(Z[-1]),
                                                                                       torch.tensor(y)))),
    }


def reference_of(check: str) -> str:
    return "finite differences" if "finite differences" in check else "torch"


def compile_latex(tex_path, out_dir, timeout: float = 60.0):
    """Compile `tex_path` with pdflatex in a temporary folder and copy the PDF to out_dir.

    Returns (pdf path or None, message). pdflatex missing or failing is reported, not raised.
    """
    exe = shutil.which("pdflatex")
    if exe is None:
        return None, "pdflatex is not installed, so the PDF was not rendered"
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(2):   # the second pass resolves references and PDF bookmarks
            try:
                proc = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", "-output-directory", tmp,
                                       str(tex_path)], capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                return None, f"pdflatex did not finish within {timeout:.0f} s"
            if proc.returncode != 0:
                tail = "\n".join(proc.stdout.splitlines()[-15:])
                return None, f"pdflatex failed (exit {proc.returncode}):\n{tail}"
        pdf = Path(tmp) / (Path(tex_path).stem + ".pdf")
        target = Path(out_dir) / pdf.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pdf, target)
    return target, "rendered with pdflatex"


def measure(ctx) -> Result:
    sizes = "-".join(map(str, SIZES))
    ctx.use_dataset("synthetic", note=f"a random {sizes} tanh MLP and a batch of {BATCH} random inputs (float64)")
    checks = backprop_equation_checks(seed=ctx.seed, eps=ctx.budget.fd_step)
    pdf, message = compile_latex(config.ROOT / TEX, ctx.out_dir)
    ctx.log(f"  derivation PDF: {message.splitlines()[0]}")
    reference = {name: reference_of(name) for name in checks}
    passed = {name: err <= TOLERANCE[reference[name]] for name, err in checks.items()}
    ctx.record(max_abs_error=max(checks.values()), checks=checks, tolerance=TOLERANCE, all_within_tolerance=
               all(passed.values()), pdf_rendered=pdf is not None, pdf_note=message, tex_file=str(TEX))
    return Result(checks, reference, dict(TOLERANCE), pdf is not None, message, list(SIZES), BATCH,
                  ctx.budget.fd_step)


def draw(ctx, r: Result) -> None:
    fig, ax = plt.subplots(figsize=(9, 4))
    names = list(r.checks)[::-1]
    colours = {"torch": "#1f77b4", "finite differences": "#ff7f0e"}
    floor = 1e-18   # an exact 0 is drawn here on the log axis
    ax.barh(names, [max(r.checks[n], floor) for n in names], color=[colours[r.reference[n]] for n in names])
    for ref, tol in r.tolerance.items():
        ax.axvline(tol, color=colours[ref], linestyle="--", label=f"tolerance vs {ref} ({tol:.0e})")
    for ref, colour in colours.items():
        ax.barh([names[0]], [0], color=colour, label=f"checked against {ref}")
    ax.set_xscale("log")
    ax.set_xlim(floor / 10, 1e-4)
    ax.set_xlabel("max absolute error (log scale; exact 0 drawn at 1e-18)")
    ax.set_title(f"Backprop equations checked on a random {'-'.join(map(str, r.sizes))} tanh MLP "
                 f"(synthetic batch of {r.batch}, float64, {ctx.mode} mode)")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ctx.save_figure(fig, "equation_checks")


def write_up(r: Result) -> str:
    rows = [(name, f"{err:.1e}", r.reference[name], f"{r.tolerance[r.reference[name]]:.0e}",
             "pass" if err <= r.tolerance[r.reference[name]] else "**FAIL**") for name, err in r.checks.items()]
    worst = max(r.checks.values())
    by_ref = {ref: max(e for n, e in r.checks.items() if r.reference[n] == ref) for ref in r.tolerance}
    failed = [n for n, e in r.checks.items() if e > r.tolerance[r.reference[n]]]
    h = r.fd_step
    if failed:
        verdict = (f"**{len(failed)} of {len(r.checks)} checks exceed their tolerance** ({', '.join(failed)}): "
                   f"the coded equations and the reference disagree there.")
    else:
        verdict = (f"All {len(r.checks)} checks are within tolerance: the equations agree with torch to "
                   f"{by_ref['torch']:.1e} (float64 round-off) and with finite differences to "
                   f"{by_ref['finite differences']:.1e}, the size expected from a central difference's O(h²) = "
                   f"{h * h:.0e} truncation plus about 1e-16/h = {1e-16 / h:.0e} of round-off at h = {h:g}.")
    pdf = "rendered here as `backprop_derivation.pdf`" if r.pdf_rendered else "not rendered in this run"
    return f"""
The full derivation is `{TEX.as_posix()}` ({pdf}: {r.pdf_note.splitlines()[0]}).

## The equations in brief
An L-layer MLP with weights W_l (n_l × n_{{l−1}}), biases b_l and activation σ, for a batch of B examples stored
as rows (X is B × n_0):

- Forward: A_0 = X;  Z_l = A_{{l−1}} W_lᵀ + 1 b_lᵀ;  A_l = σ(Z_l) for l < L;  P = softmax(Z_L) row by row.
- Loss: J = −(1/B) Σ_n Σ_k Y_nk log P_nk with Y the one-hot labels.
- Softmax Jacobian ∂p_i/∂z_j = p_i(δ_ij − p_j) gives, per example, ∂ℓ/∂z = p − y; for the batch mean,
  **Δ_L = ∂J/∂Z_L = (P − Y)/B**.
- Recursion (chain rule through Z_{{l+1}} = A_l W_{{l+1}}ᵀ + 1 b_{{l+1}}ᵀ and A_l = σ(Z_l)):
  **Δ_l = (Δ_{{l+1}} W_{{l+1}}) ⊙ σ′(Z_l)**.
- Parameter gradients: **∂J/∂W_l = Δ_lᵀ A_{{l−1}}**, **∂J/∂b_l = Δ_lᵀ 1** (a sum over the batch: the 1/B is
  already in Δ_L).
- Cost: the backward pass is two matrix products per layer, about twice the forward pass.

## Numerical check (`equation_checks.png`)
The same equations, coded literally, on a random {'-'.join(map(str, r.sizes))} tanh MLP with a batch of
{r.batch} (float64), compared with torch autograd and with central finite differences (h = {h:g}):

{table(["equation", "max absolute error", "checked against", "tolerance", "result"], rows)}

Largest error: **{worst:.1e}**. {verdict}
"""
