"""NumPy-only deep learning from scratch: functional ops with explicit backward passes,
layer classes, a Sequential model, optimizers, learning-rate schedules and gradient checks.

Modules: functional (linear, conv2d, pooling, dropout, norms), activations, losses, rnn,
layers (classes), model (Sequential, train_epoch, evaluate), optim, schedules, gradcheck,
im2col.
"""
from . import activations, functional, gradcheck, im2col, layers, losses, model, optim, rnn, schedules
from .layers import (ELU, GELU, RNN, Activation, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d,
                     Dropout, Flatten, Layer, LayerNorm, LeakyReLU, Linear, MaxPool2d, ReLU,
                     Sigmoid, SiLU, Softplus, Tanh, init_array)
from .losses import bce, bce_with_logits, huber, mae, mse, softmax, softmax_cross_entropy
from .model import Sequential, accuracy, evaluate, predict, train_epoch
from .optim import SGD, Adam, AdamW, RMSprop
from .schedules import lr_curve

__all__ = [
    "activations", "functional", "gradcheck", "im2col", "layers", "losses", "model", "optim",
    "rnn", "schedules",
    "Layer", "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "Flatten", "Dropout", "BatchNorm1d",
    "BatchNorm2d", "LayerNorm", "Activation", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "ELU",
    "GELU", "Softplus", "SiLU", "RNN", "init_array",
    "softmax", "softmax_cross_entropy", "bce", "bce_with_logits", "mse", "mae", "huber",
    "Sequential", "train_epoch", "evaluate", "predict", "accuracy",
    "SGD", "RMSprop", "Adam", "AdamW", "lr_curve",
]
