"""Section 6: recurrent networks. One module per task; declarations only (cheap to import)."""
from experiments.registry import task

task("6.1", "RNN from scratch with BPTT (NumPy)", "t6_1_rnn_bptt", datasets=("synthetic",),
     headline="BPTT gradient check: max relative error {max_relative_error:.1e}",
     metrics=("max_relative_error", "final_loss"), threads=1)
task("6.2", "Vanishing gradients: RNN vs LSTM", "t6_2_vanishing_gradients", datasets=("synthetic",),
     headline="{verdict}", metrics=("decay_ratio", "verdict"), threads=1)
task("6.3", "Spectral radius of the recurrent weights", "t6_3_spectral_radius", datasets=("synthetic",),
     headline="torch default ρ = {spectral_radius[torch_default]:.2f}", metrics=("spectral_radius",), threads=1)
task("6.4", "RNN vs LSTM vs GRU on a sequence-sum task", "t6_4_rnn_lstm_gru", datasets=("synthetic",),
     headline="{verdict}", metrics=("verdict",), threads=1)
task("6.5", "Sequence-length ablation: RNN, LSTM, GRU", "t6_5_length_ablation", datasets=("synthetic",),
     headline="{verdict}", metrics=("final_loss", "verdict"), threads=1)
task("6.6", "Recurrent models compared: time, loss, parameters", "t6_6_comparison_table", datasets=("synthetic",),
     headline="{verdict}", metrics=("verdict",), threads=1)
task("6.7", "Time-series forecasting: RNN, LSTM, GRU vs baselines", "t6_7_forecasting", datasets=("synthetic",),
     headline="{verdict}", metrics=("mse", "mae", "verdict"), threads=1)
task("6.8", "Bidirectional vs unidirectional RNN", "t6_8_bidirectional", datasets=("synthetic",),
     headline="{verdict}", metrics=("test_accuracy", "verdict"), threads=1)
