"""Section 1: foundations — networks from scratch. One module per task; declarations only (cheap to import)."""
from experiments.registry import task

task("1.1", "MLP from scratch on logic gates", "t1_1_logic_gates", datasets=("synthetic",),
     headline="XOR solved on {xor_solved_fraction:.0%} of seeds by the 2-2-1 net", metrics=("predictions",),
     threads=1)
task("1.2", "Activation functions", "t1_2_activations", datasets=("digits",),
     headline="max |Δ| vs torch {max_abs_diff_vs_torch:.1e}", metrics=("max_abs_diff_vs_torch",), threads=1)
task("1.3", "Universal approximation", "t1_3_universal_approximation", datasets=("synthetic",),
     headline="median MSE reduction {median_mse_reduction:.3g}×", metrics=("median_mse_reduction",), threads=1)
task("1.4", "Manual backprop vs autograd", "t1_4_backprop_vs_autograd", datasets=("fashion-mnist",),
     headline="max |Δgrad| vs autograd {max_abs_grad_diff:.1e}", metrics=("max_abs_grad_diff",),
     image_dataset=True, threads=1)
task("1.5", "Loss functions", "t1_5_loss_functions", datasets=("synthetic",),
     headline="max |Δ| vs torch {max_abs_diff_vs_torch:.1e}", metrics=("max_abs_diff_vs_torch",), threads=1)
