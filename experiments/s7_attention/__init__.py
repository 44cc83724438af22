"""Section 7: attention and Transformers. One module per task; declarations only (cheap to import)."""
from experiments.registry import Bar, Target, task

task("7.1", "Attention, written out", "t7_1_attention", datasets=("synthetic",),
     headline="multi-head attention matches torch to {max_abs_diff_vs_torch:.1e}",
     metrics=("max_abs_diff_vs_torch", "max_abs_diff.sdpa", "max_abs_diff.multihead", "weights_sum_to_one"),
     threads=1)
task("7.2", "Positional encoding", "t7_2_positional_encoding", datasets=("synthetic",),
     headline="similarity depends on offset only (max deviation {offset_only_deviation:.1e})",
     metrics=("offset_only_deviation", "similarity_by_offset", "neighbour_similarity"), threads=1)
task("7.3", "IMDb: GRU vs GRU with attention", "t7_3_imdb_gru_attention", datasets=("imdb",),
     headline="attention {test_accuracy[attention]:.1%} vs last state {test_accuracy[baseline]:.1%} ({verdict})",
     threads=1,
     metrics=("test_accuracy.baseline", "test_accuracy.attention", "test_examples", "verdict", "seconds_per_epoch",
              "parameters"),
     target=Target("baseline ≥ 85%, attention ≥ 89% test accuracy in FULL on IMDb",
                   (Bar("test_accuracy.baseline", ">=", 0.85, "full", "imdb"),
                    Bar("test_accuracy.attention", ">=", 0.89, "full", "imdb"))))
task("7.4", "Transformer encoder classifier vs the GRUs", "t7_4_transformer_classifier", datasets=("imdb",),
     headline="Transformer {test_accuracy[transformer]:.1%} ({verdict})",
     metrics=("test_accuracy.transformer", "test_examples", "seconds_per_epoch", "parameters", "verdict"),
     uses=("7.3",), threads=1)
task("7.5", "Five sequence models on one task", "t7_5_sequence_models", datasets=("synthetic",),
     headline="{verdict}",
     metrics=("test_accuracy", "best_val_accuracy", "parameters", "epochs", "verdict", "pooling_verdict"),
     threads=1)
task("7.6", "Forecasting: LSTM vs Transformer", "t7_6_forecasting_transformer", datasets=("synthetic",),
     headline="{verdict}", metrics=("mse", "mae", "verdict"), threads=1)
