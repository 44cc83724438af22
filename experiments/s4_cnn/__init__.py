"""Section 4: convolutional networks. One module per task; declarations only (cheap to import)."""
from experiments.registry import Bar, Target, task

task("4.1", "Convolution and pooling, seen", "t4_1_convolution_seen", datasets=("fashion-mnist", "sklearn sample photos"),
     headline="output-size formula matches torch in {formula_cases_matched} of {formula_cases} cases",
     metrics=("formula_matches_torch", "formula_cases_matched", "formula_cases"),
     image_dataset=True, threads=1)
task("4.2", "CNN from scratch in NumPy", "t4_2_numpy_cnn", datasets=("mnist",),
     headline="test accuracy {test_accuracy:.1%}; PyTorch twin on the same batches {twin_test_accuracy:.1%}",
     metrics=("test_accuracy", "seconds_per_epoch", "twin_test_accuracy", "max_step_loss_difference", "verdict"),
     image_dataset=True, threads=1, target=Target("≥ 95% test accuracy in HYBRID on MNIST",
                                                 (Bar("test_accuracy", ">=", 0.95, "hybrid", "mnist"),)))
task("4.3", "PyTorch CNN on MNIST", "t4_3_pytorch_cnn", datasets=("mnist",),
     headline="test accuracy {test_accuracy:.2%}",
     metrics=("test_accuracy", "test_examples", "per_class", "confusion_matrix", "epochs", "parameters"),
     image_dataset=True, threads=1, target=Target("≥ 99.0% on MNIST, ≥ 91% on Fashion-MNIST (FULL)",
                                      (Bar("test_accuracy", ">=", 0.99, "full", "mnist"),
                                       Bar("test_accuracy", ">=", 0.91, "full", "fashion-mnist"))))
task("4.4", "Filters and feature maps of the trained CNN", "t4_4_filters_and_feature_maps", datasets=("mnist",),
     headline="{verdict}", metrics=("edge_like_filters.trained", "edge_like_filters.random_init_mean", "verdict"),
     image_dataset=True, threads=1, uses=("4.3",))
task("4.5", "Receptive fields", "t4_5_receptive_fields", datasets=("mnist",),
     headline="receptive field after pool2: {receptive_field[pool2]} px", metrics=("receptive_field.pool2",),
     image_dataset=True, threads=1, uses=("4.3",))
task("4.6", "Max vs average pooling", "t4_6_max_vs_average_pooling", datasets=("mnist",),
     headline="{verdict}", metrics=("accuracy_under_shift", "verdict"), image_dataset=True, threads=1)
task("4.7", "Batch-norm CNN vs plain CNN", "t4_7_batch_norm_cnn", datasets=("mnist",),
     headline="{verdict}", metrics=("mean_val_accuracy_over_lrs", "verdict"), image_dataset=True, threads=1)
task("4.8", "Data augmentation", "t4_8_data_augmentation", datasets=("fashion-mnist",),
     headline="{verdict}", metrics=("generalisation_gap", "verdict"), image_dataset=True, threads=1)
task("4.9", "Product image classification (Fashion-MNIST)", "t4_9_product_classifier", datasets=("fashion-mnist",),
     headline="test accuracy {test_accuracy:.2%} ({verdict})",
     metrics=("test_accuracy", "per_class_accuracy", "latency_ms_per_image", "images_per_second", "verdict"),
     image_dataset=True, threads=1, uses=("4.3",), target=Target("≥ 93% in HYBRID, ≥ 94.5% in FULL on Fashion-MNIST",
                                      (Bar("test_accuracy", ">=", 0.93, "hybrid", "fashion-mnist"),
                                       Bar("test_accuracy", ">=", 0.945, "full", "fashion-mnist"))))
