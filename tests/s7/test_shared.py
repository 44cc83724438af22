"""Section 7 helpers: tokenizer, vocabulary, padding, masks, sinusoidal positions, padding-proof models."""
from __future__ import annotations

import math

import torch

from experiments.s7_attention._shared import (GRUTextClassifier, TransformerClassifier, build_vocab, encode,
                                             lengths_of, sinusoidal_encoding, tokenize)


def test_tokenizer_lowercases_and_splits_punctuation():
    assert tokenize("The film wasn't GOOD, but OK!") == ["the", "film", "wasn't", "good", ",", "but", "ok", "!"]


def test_vocab_is_pad_unk_then_most_frequent_with_alphabetical_ties():
    vocab = build_vocab([["b", "a", "b", "c"], ["a", "b"]], size=4)
    assert vocab == ["<pad>", "<unk>", "b", "a"]


def test_encode_pads_right_truncates_and_maps_unknown_words():
    vocab = ["<pad>", "<unk>", "good", "film"]
    x = encode([["good", "film", "zzz"], ["film"] * 5, []], vocab, max_len=4)
    assert x.tolist() == [[2, 3, 1, 0], [3, 3, 3, 3], [1, 0, 0, 0]]
    assert lengths_of(x).tolist() == [3, 4, 1]


def test_sinusoidal_encoding_values_and_offset_invariance():
    pe = sinusoidal_encoding(50, 64)
    assert pe.shape == (50, 64)
    assert torch.allclose(pe[0, 0::2], torch.zeros(32, dtype=torch.float64))
    assert torch.allclose(pe[0, 1::2], torch.ones(32, dtype=torch.float64))
    assert abs(float(pe[3, 2]) - math.sin(3 / 10000 ** (2 / 64))) < 1e-12
    sim = pe @ pe.T
    assert torch.allclose(torch.diagonal(sim, 7), torch.full((43,), float(sim[0, 7]), dtype=torch.float64), atol=1e-9)


def test_gru_ignores_padding_last_state_and_attention():
    torch.manual_seed(0)
    for attention in (False, True):
        model = GRUTextClassifier(20, 8, 8, attention=attention).eval()
        short = torch.tensor([[3, 4, 5]])
        padded = torch.tensor([[3, 4, 5, 0, 0, 0, 0]])
        assert torch.allclose(model(short), model(padded), atol=1e-6)
    _, w = model.forward_with_weights(torch.tensor([[3, 4, 5, 0, 0], [6, 7, 0, 0, 0]]))
    assert torch.all(w[0, 3:] == 0) and torch.all(w[1, 2:] == 0)
    assert torch.allclose(w.sum(1), torch.ones(2), atol=1e-6)


def test_transformer_classifier_masks_padding():
    torch.manual_seed(0)
    for pooling in ("cls", "mean"):
        model = TransformerClassifier(d_model=16, heads=2, layers=1, d_ff=32, max_len=10, vocab_size=20,
                                      pooling=pooling).eval()
        a = model(torch.tensor([[3, 4, 5, 0, 0, 0]]))
        b = model(torch.tensor([[3, 4, 5, 0]]))
        assert torch.allclose(a, b, atol=1e-5)
