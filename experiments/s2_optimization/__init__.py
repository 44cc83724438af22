"""Section 2: optimization and training. One module per task; declarations only (cheap to import)."""
from experiments.registry import Bar, Target, task

task("2.1", "Gradient checking", "t2_1_gradient_checking", datasets=("synthetic",),
     headline="max relative error {max_relative_error:.1e}", metrics=("max_relative_error", "layers_checked"),
     threads=1, target=Target("every relative error below 1e-6 in float64",
                                (Bar("max_relative_error", "<=", 1e-6, mode="*"),)))
task("2.2", "Optimizers from scratch", "t2_2_optimizers", datasets=("synthetic", "digits"),
     headline="max |Δ| vs torch.optim {max_abs_diff_vs_torch:.1e}",
     metrics=("max_abs_diff_vs_torch", "bar_passed", "test_accuracy", "comparisons"), threads=1,
     target=Target("each optimizer matches torch.optim step for step to 1e-10",
                   (Bar("max_abs_diff_vs_torch", "<=", 1e-10, mode="*"),)))
task("2.3", "Learning-rate schedules", "t2_3_lr_schedules", datasets=("fashion-mnist",),
     headline="{verdict}", metrics=("verdict", "best_schedule", "test_accuracy", "max_abs_diff_vs_torch"),
     image_dataset=True, threads=1)
task("2.4", "Learning-rate range test", "t2_4_lr_range_test", datasets=("fashion-mnist",),
     headline="suggested LR {suggested_lr:.2g}: {confirmation}",
     metrics=("suggested_lr", "short_run_accuracy", "confirmation", "verdict", "suggested_gap_to_best"),
     image_dataset=True, threads=1,
     target=Target("the short run at the suggested lr within 2 points of the best short run",
                   (Bar("suggested_gap_to_best", "<=", 0.02, mode="*"),)))
task("2.5", "Hyperparameter study", "t2_5_hyperparameters", datasets=("fashion-mnist",),
     headline="{verdict}", metrics=("verdict", "best_setting", "comparisons", "sgd_sweep", "runs.baseline"),
     image_dataset=True, threads=1)
task("2.6", "Weight initialization", "t2_6_initialization", datasets=("digits",),
     headline="{verdict}", metrics=("verdict", "test_accuracy", "weight_distributions", "activation_std",
                                    "weight_grad_std"), threads=1)
task("2.7", "Gradient flow vs depth", "t2_7_gradient_flow", datasets=("digits",),
     headline="{flow}", metrics=("flow", "verdict", "grad_ratio_first_last_at_init", "test_accuracy", "grad_norms"),
     threads=1)
task("2.8", "Backpropagation derivation", "t2_8_backprop_derivation", datasets=("synthetic",),
     headline="derivation checked: max error {max_abs_error:.1e}",
     metrics=("max_abs_error", "checks", "all_within_tolerance", "pdf_rendered"), threads=1)
task("2.9", "MLP baseline and architecture study", "t2_9_mlp_baseline", datasets=("mnist",),
     headline="784-512-256-10 test accuracy {test_accuracy:.1%}", metrics=("test_accuracy", "study", "verdicts"),
     image_dataset=True, threads=1)
