"""Section 6: recurrent networks. One module per task; declarations only (cheap to import)."""
from experiments.registry import task

task("6.1", "RNN from scratch with BPTT (NumPy)", "t6_1_rnn_bptt", datasets=("synthetic",),
     headline="BPTT gradient check: max relative error {max_relative_error:.1e}",
     metrics=("max_relative_error", "final_loss"), threads=1)
task("6.2", "Vanishing gradients: RNN vs LSTM", "t6_2_vanishing_gradients", datasets=("synthetic",),
     headline="first of 100 inputs gets {first_step_share[rnn][100]:.0e} of the last one's gradient in the RNN, "
              "{first_step_share[lstm][100]:.0e} in the LSTM",
     metrics=("decay_ratio", "first_step_share", "verdict"), threads=1)
task("6.3", "Spectral radius of the recurrent weights", "t6_3_spectral_radius", datasets=("synthetic",),
     headline="torch default ρ = {spectral_radius[torch_default]:.2f}", metrics=("spectral_radius",), threads=1)
task("6.4", "RNN vs LSTM vs GRU on a sequence-sum task", "t6_4_rnn_lstm_gru", datasets=("synthetic",),
     headline="{verdict}", metrics=("verdict", "final_loss", "seconds_per_epoch", "autograd_nodes_per_batch"), threads=1)
task("6.5", "Sequence-length ablation: RNN, LSTM, GRU", "t6_5_length_ablation", datasets=("synthetic",),
     headline="{verdict}", metrics=("final_loss", "verdict", "lstm_vs_gru"), threads=1)
task("6.6", "Recurrent models compared: time, loss, parameters", "t6_6_comparison_table", datasets=("synthetic",),
     headline="{verdict}; recommended: {recommended}",
     metrics=("verdict", "recommended", "params", "train_seconds", "final_loss"), threads=1)
task("6.7", "Time-series forecasting: RNN, LSTM, GRU vs baselines", "t6_7_forecasting", datasets=("synthetic",),
     headline="{verdict}", metrics=("mse", "mae", "verdict"), threads=1)
task("6.8", "Bidirectional vs unidirectional RNN", "t6_8_bidirectional", datasets=("synthetic",),
     headline="{verdict}", metrics=("test_accuracy", "verdict"), threads=1)
