"""Section 2: optimization and training. One module per task; declarations only (cheap to import)."""
from experiments.registry import task

task("2.1", "Gradient checking", "t2_1_gradient_checking", datasets=("synthetic",),
     headline="max relative error {max_relative_error:.1e}", metrics=("max_relative_error", "layers_checked"),
     threads=1, target="every relative error below 1e-6 in float64")
task("2.2", "Optimizers from scratch", "t2_2_optimizers", datasets=("synthetic", "digits"),
     headline="max |Δ| vs torch.optim {max_abs_diff_vs_torch:.1e}", metrics=("max_abs_diff_vs_torch",), threads=1)
task("2.3", "Learning-rate schedules", "t2_3_lr_schedules", datasets=("fashion-mnist",),
     headline="{verdict}", metrics=("verdict",), image_dataset=True, threads=1)
task("2.4", "Learning-rate range test", "t2_4_lr_range_test", datasets=("fashion-mnist",),
     headline="suggested LR {suggested_lr:.2g}", metrics=("suggested_lr", "short_run_accuracy"),
     image_dataset=True, threads=1)
task("2.5", "Hyperparameter study", "t2_5_hyperparameters", datasets=("fashion-mnist",),
     headline="{verdict}", metrics=("verdict",), image_dataset=True, threads=1)
task("2.6", "Weight initialization", "t2_6_initialization", datasets=("digits",),
     headline="{verdict}", metrics=("verdict",), threads=1)
task("2.7", "Gradient flow vs depth", "t2_7_gradient_flow", datasets=("digits",),
     headline="{verdict}", metrics=("verdict",), threads=1)
task("2.8", "Backpropagation derivation", "t2_8_backprop_derivation", datasets=("synthetic",),
     headline="derivation checked: max error {max_abs_error:.1e}", metrics=("max_abs_error",), threads=1)
task("2.9", "MLP baseline and architecture study", "t2_9_mlp_baseline", datasets=("mnist",),
     headline="784-512-256-10 test accuracy {test_accuracy:.1%}", metrics=("test_accuracy", "study"),
     image_dataset=True, threads=1)
