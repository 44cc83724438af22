"""Section 4: convolutional networks. One module per task; declarations only (cheap to import)."""
from experiments.registry import task

task("4.1", "Convolution and pooling, seen", "t4_1_convolution_seen", datasets=("fashion-mnist", "sklearn sample photos"),
     headline="output-size formula matches torch: {formula_matches_torch}", metrics=("formula_matches_torch",),
     image_dataset=True, threads=1)
task("4.2", "CNN from scratch in NumPy", "t4_2_numpy_cnn", datasets=("mnist",),
     headline="test accuracy {test_accuracy:.1%}", metrics=("test_accuracy", "seconds_per_epoch"),
     image_dataset=True, threads=1, target="≥ 95% test accuracy in HYBRID on MNIST")
task("4.3", "PyTorch CNN on MNIST", "t4_3_pytorch_cnn", datasets=("mnist",),
     headline="test accuracy {test_accuracy:.2%}",
     metrics=("test_accuracy", "test_examples", "per_class", "confusion_matrix", "epochs", "parameters"),
     image_dataset=True, target="≥ 99.0% on MNIST; ≥ 91% on Fashion-MNIST (FULL)")
task("4.4", "Filters and feature maps of the trained CNN", "t4_4_filters_and_feature_maps", datasets=("mnist",),
     headline="{edge_like_filters[trained]} edge-like first-layer filters", metrics=("edge_like_filters",),
     image_dataset=True, threads=1)
task("4.5", "Receptive fields", "t4_5_receptive_fields", datasets=("mnist",),
     headline="receptive field after pool2: {receptive_field[pool2]} px", metrics=("receptive_field",),
     image_dataset=True, threads=1)
task("4.6", "Max vs average pooling", "t4_6_max_vs_average_pooling", datasets=("mnist",),
     headline="{verdict}", metrics=("accuracy_under_shift", "verdict"), image_dataset=True, threads=1)
task("4.7", "Batch-norm CNN vs plain CNN", "t4_7_batch_norm_cnn", datasets=("mnist",),
     headline="{verdict}", metrics=("mean_val_accuracy_over_lrs", "verdict"), image_dataset=True, threads=1)
task("4.8", "Data augmentation", "t4_8_data_augmentation", datasets=("fashion-mnist",),
     headline="{verdict}", metrics=("generalisation_gap", "verdict"), image_dataset=True, threads=1)
task("4.9", "Product image classification (Fashion-MNIST)", "t4_9_product_classifier", datasets=("fashion-mnist",),
     headline="test accuracy {test_accuracy:.2%}",
     metrics=("test_accuracy", "per_class_accuracy", "latency_ms_per_image", "images_per_second"),
     image_dataset=True, target="≥ 93% in HYBRID, ≥ 94.5% in FULL on Fashion-MNIST")
