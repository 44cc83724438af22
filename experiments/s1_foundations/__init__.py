"""Section 1: foundations — networks from scratch. One module per task; declarations only (cheap to import)."""
from experiments.registry import task

task("1.1", "MLP from scratch on logic gates", "t1_1_logic_gates", datasets=("synthetic",),
     headline="{default_seed_outcome} by the {demo_net} net (seed {traced_seed}); the 2-2-1 net solves XOR on "
              "{xor_solved_fraction:.0%} of {restarts} seeds",
     metrics=("predictions", "solved_fraction.XOR.2-2-1", "solved_fraction.XOR.2-16-1", "default_seed_solved.XOR",
              "default_seed_outcome", "verdict", "chain_rule_trace"),
     threads=1)
task("1.2", "Activation functions", "t1_2_activations", datasets=("digits",),
     headline="8 activations match torch to {max_abs_diff_vs_torch:.0e}; after {early_epoch} epoch(s) {verdict}",
     metrics=("max_abs_diff_vs_torch", "test_accuracy", "early_epoch", "top_group", "verdict"), threads=1)
task("1.3", "Universal approximation", "t1_3_universal_approximation", datasets=("synthetic",),
     headline="widening 2 → 128 hidden units cuts test MSE {median_mse_reduction:.0f}× (median of 4 functions)",
     metrics=("median_mse_reduction", "test_mse", "best_width"), threads=1)
task("1.4", "Manual backprop vs autograd", "t1_4_backprop_vs_autograd", datasets=("fashion-mnist",),
     headline="hand-written gradients match autograd to {max_abs_grad_diff:.0e} (float64); speed: {verdict}",
     metrics=("max_abs_grad_diff", "time_per_step_ms", "test_accuracy", "verdict"),
     image_dataset=True, threads=1)
task("1.5", "Loss functions", "t1_5_loss_functions", datasets=("synthetic",),
     headline="losses match torch to {max_abs_diff_vs_torch:.0e}; line through outliers: {verdict}",
     metrics=("max_abs_diff_vs_torch", "softmax_example", "clean_test_mse", "verdict"), threads=1)
