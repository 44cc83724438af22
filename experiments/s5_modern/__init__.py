"""Section 5: modern architectures on CIFAR-10. One module per task; declarations only (cheap to import)."""
from experiments.registry import Bar, Target, task

task("5.1", "ResNet-18, our own", "t5_1_resnet18", datasets=("cifar10",),
     headline="test accuracy {test_accuracy:.1%}; {parameters:,} parameters (torchvision: {torchvision_parameters:,})",
     metrics=("test_accuracy", "test_examples", "parameters", "torchvision_parameters", "parameters_match",
              "per_class_accuracy", "width", "epochs"),
     image_dataset=True, threads=1)
task("5.2", "Why skip connections", "t5_2_skip_connections", datasets=("cifar10",),
     headline="{verdict}", metrics=("final_train_loss", "grad_norm_first_layer", "depths", "verdict"),
     image_dataset=True, threads=1)
task("5.3", "Transfer learning", "t5_3_transfer_learning", datasets=("cifar10",),
     headline="{verdict} (source: {source})", metrics=("test_accuracy", "source", "labels_per_class", "verdict"),
     image_dataset=True, threads=1)
task("5.4", "CIFAR-10 project", "t5_4_cifar10_project", datasets=("cifar10",),
     headline="test accuracy {test_accuracy:.1%} ({verdict})",
     metrics=("test_accuracy", "test_examples", "per_class_accuracy", "confusion_matrix", "baseline_test_accuracy",
              "verdict", "epochs", "seconds_per_epoch"),
     image_dataset=True, threads=1, target=Target("≥ 80% in HYBRID, ≥ 90% in FULL on CIFAR-10",
                                      (Bar("test_accuracy", ">=", 0.80, "hybrid", "cifar10"),
                                       Bar("test_accuracy", ">=", 0.90, "full", "cifar10"))))
