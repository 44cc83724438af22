"""Section 3: regularization and generalization. One module per task; declarations only (cheap to import)."""
from experiments.registry import task

task("3.1", "Polynomial regression: under- and over-fitting", "t3_1_polynomial_regression", datasets=("synthetic",),
     headline="{verdict} (test MSE)", metrics=("train_mse", "test_mse", "best_degree", "verdict"))
task("3.2", "Dropout 0.0 vs 0.5", "t3_2_dropout", datasets=("mnist",),
     headline="test accuracy: {verdict}; train–test gap: {gap_verdict}",
     metrics=("test_accuracy", "generalization_gap", "verdict", "gap_verdict"), image_dataset=True, threads=1)
task("3.3", "L2 regularization strength", "t3_3_l2_strength", datasets=("mnist",),
     headline="{verdict}", metrics=("val_accuracy", "best_lambda", "verdict"), image_dataset=True, threads=1)
task("3.4", "L1 vs L2 regularization", "t3_4_l1_vs_l2", datasets=("mnist",),
     headline="near-zero weights: L1 {sparsity[l1]:.0%}, L2 {sparsity[l2]:.0%}", metrics=("sparsity",),
     image_dataset=True, threads=1)
task("3.5", "Early stopping", "t3_5_early_stopping", datasets=("mnist",),
     headline="stopped at epoch {stopped_epoch} of {epochs_fixed} ({epochs_saved} saved); test accuracy: {verdict}",
     metrics=("best_epoch", "stopped_epoch", "epochs_saved", "test_accuracy", "train_seconds", "verdict"),
     image_dataset=True, threads=1)
task("3.6", "Bias-variance trade-off", "t3_6_bias_variance", datasets=("synthetic",),
     headline="test MSE lowest at degree {lowest_test_mse_degree} ({verdict})",
     metrics=("bias_squared", "variance", "test_mse", "best_degree", "lowest_test_mse_degree", "verdict"))
task("3.7", "Normalization: none vs batch norm vs layer norm", "t3_7_normalization", datasets=("mnist",),
     headline="{verdict}", metrics=("verdict", "test_verdict", "first_epoch_val_accuracy", "test_accuracy",
                                    "highest_tolerated_lr", "bn_internals"), image_dataset=True, threads=1)
task("3.8", "Data splits and cross-validation", "t3_8_data_splits", datasets=("digits",),
     headline="k-fold accuracy {kfold_accuracy:.1%}", metrics=("kfold_accuracy",), threads=1)
