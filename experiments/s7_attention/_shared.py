"""Section 7's shared pieces: the tokenizer and vocabulary, padding and masks, sinusoidal positions,
and the text / sequence models (GRU with or without additive attention, a small Transformer encoder)."""
from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, UNK = "<pad>", "<unk>"          # ids 0 and 1
TOKEN = re.compile(r"[a-z0-9']+|[.,!?]")


# ----------------------------------------------------------------------------- text
def tokenize(text: str) -> list[str]:
    """Lower-case regex tokens: words (with apostrophes) and the punctuation marks . , ! ?"""
    return TOKEN.findall(text.lower())


def build_vocab(token_lists, size: int) -> list[str]:
    """``<pad>``, ``<unk>`` and the ``size - 2`` most frequent tokens (ties broken alphabetically)."""
    counts = Counter(t for toks in token_lists for t in toks)
    common = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max(size - 2, 0)]
    return [PAD, UNK] + [w for w, _ in common]


def encode(token_lists, vocab: list[str], max_len: int) -> torch.Tensor:
    """(N, max_len) token ids, right-padded with 0; reviews longer than ``max_len`` keep their first
    ``max_len`` tokens; unknown words map to 1. Every row keeps at least one token (an empty text is <unk>)."""
    index = {w: i for i, w in enumerate(vocab)}
    out = np.zeros((len(token_lists), max_len), dtype=np.int64)
    for row, toks in enumerate(token_lists):
        ids = [index.get(t, 1) for t in toks[:max_len]] or [1]
        out[row, :len(ids)] = ids
    return torch.from_numpy(out)


def lengths_of(x: torch.Tensor) -> torch.Tensor:
    """Real lengths of right-padded id rows (padding id 0)."""
    return (x != 0).sum(1).clamp(min=1)


@dataclass
class TextSplits:
    vocab: list[str]
    max_len: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    test_tokens: list[list[str]]     # the test reviews' tokens (untruncated)


def text_splits(data, *, vocab_size: int, max_len: int, train_size: int | None, test_size: int | None,
                val_fraction: float, seed: int) -> TextSplits:
    """Tokenize, subsample (seeded, clipped to what exists), build the vocabulary from the training
    split only, and encode train / validation / test."""
    rng = np.random.default_rng(seed)
    tr = rng.permutation(len(data.train_texts))[:train_size or None]
    te = rng.permutation(len(data.test_texts))[:test_size or None]
    tr_tok = [tokenize(data.train_texts[i]) for i in tr]
    te_tok = [tokenize(data.test_texts[i]) for i in te]
    n_val = max(1, int(round(len(tr) * val_fraction)))
    fit_tok, val_tok = tr_tok[n_val:], tr_tok[:n_val]
    vocab = build_vocab(fit_tok, vocab_size)
    y_tr = torch.as_tensor(np.asarray(data.train_labels)[tr])
    y_te = torch.as_tensor(np.asarray(data.test_labels)[te])
    return TextSplits(vocab, max_len, encode(fit_tok, vocab, max_len), y_tr[n_val:], encode(val_tok, vocab, max_len),
                      y_tr[:n_val], encode(te_tok, vocab, max_len), y_te, te_tok)


# ----------------------------------------------------------------------------- positions
def sinusoidal_encoding(positions: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """PE[p, 2i] = sin(p / base^(2i/d)), PE[p, 2i+1] = cos(p / base^(2i/d)): (positions, d_model)."""
    p = torch.arange(positions, dtype=torch.float64)[:, None]
    freq = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    pe = torch.zeros(positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(p * freq)
    pe[:, 1::2] = torch.cos(p * freq)
    return pe


# ----------------------------------------------------------------------------- models
class AdditiveAttention(nn.Module):
    """Bahdanau attention: e_t = vᵀ tanh(W_h h_t + W_q q), α = softmax(e) over real steps only."""

    def __init__(self, hidden: int, attn: int):
        super().__init__()
        self.w_h = nn.Linear(hidden, attn, bias=False)
        self.w_q = nn.Linear(hidden, attn)
        self.v = nn.Linear(attn, 1, bias=False)

    def forward(self, states, query, mask):              # (B,T,H), (B,H), (B,T) True = real token
        scores = self.v(torch.tanh(self.w_h(states) + self.w_q(query)[:, None])).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return torch.bmm(weights[:, None], states).squeeze(1), weights


class GRUTextClassifier(nn.Module):
    """Embedding → multi-layer GRU over packed (unpadded) sequences → the last real step's hidden
    state (baseline), or an additive-attention summary of all real steps queried by it."""

    def __init__(self, vocab_size: int, embed: int, hidden: int, layers: int = 2, attention: bool = False,
                 dropout: float = 0.3, classes: int = 2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=0)
        self.gru = nn.GRU(embed, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0)
        self.attention = AdditiveAttention(hidden, hidden) if attention else None
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden if attention else hidden, classes)

    def forward_with_weights(self, x):
        lengths = lengths_of(x)
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(x), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        out, h_n = self.gru(packed)
        last = h_n[-1]                                     # the last REAL token's state (packing skips pads)
        if self.attention is None:
            return self.head(self.drop(last)), None
        states, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        context, weights = self.attention(states, last, x != 0)
        return self.head(self.drop(torch.cat([context, last], 1))), weights

    def forward(self, x):
        return self.forward_with_weights(x)[0]


class EncoderBlock(nn.Module):
    """Pre-norm Transformer block: x + MHA(LN(x)), then x + FFN(LN(x)) with GELU.

    Attention is torch's fused ``F.scaled_dot_product_attention`` (7.1 writes it out and checks it):
    on a CPU it is about 2.5× faster than ``nn.MultiheadAttention``'s unfused path with dropout on
    the attention matrix, which is what made 7.4 slow. Keeps the last attention weights (averaged
    over heads) when ``keep_weights`` is set."""

    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float):
        super().__init__()
        assert d_model % heads == 0, "d_model must split evenly into heads"
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)          # W_q, W_k, W_v in one matrix
        self.out = nn.Linear(d_model, d_model)              # W_o
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model))
        self.drop = nn.Dropout(dropout)
        self.keep_weights, self.weights = False, None

    def forward(self, x, pad_mask=None):                 # x (B,T,D); pad_mask (B,T): True = padding
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (B,H,T,d_k) each
        keep = None if pad_mask is None else ~pad_mask[:, None, None, :]      # (B,1,1,T): True = may be attended
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)           # softmax(QKᵀ/√d_k)·V
        if self.keep_weights:
            scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)     # (B,H,T,T)
            if keep is not None:
                scores = scores.masked_fill(~keep, float("-inf"))
            self.weights = torch.softmax(scores, -1).mean(1).detach()        # (B,T,T), head average
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.ff(self.norm2(x)))


class TransformerClassifier(nn.Module):
    """Token ids (``vocab_size`` given) or real features (``in_features``) → d_model, plus sinusoidal
    positions, → blocks → CLS token or mean over real steps → head. Padding (id 0) is masked."""

    def __init__(self, *, d_model: int, heads: int, layers: int, d_ff: int, max_len: int, outputs: int = 2,
                 vocab_size: int | None = None, in_features: int | None = None, dropout: float = 0.1,
                 pooling: str = "cls"):
        super().__init__()
        self.tokens = vocab_size is not None
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=0) if self.tokens else nn.Linear(in_features, d_model)
        self.pooling = pooling
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model)) if pooling == "cls" else None
        self.register_buffer("pe", sinusoidal_encoding(max_len + 1, d_model).float(), persistent=False)
        self.blocks = nn.ModuleList(EncoderBlock(d_model, heads, d_ff, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, outputs)
        self.scale = math.sqrt(d_model) if self.tokens else 1.0

    def forward(self, x):
        pad = (x == 0) if self.tokens else None
        h = self.embed(x) * self.scale
        if self.cls is not None:
            h = torch.cat([self.cls.expand(len(h), -1, -1), h], 1)
            if pad is not None:
                pad = torch.cat([torch.zeros_like(pad[:, :1]), pad], 1)
        h = h + self.pe[:h.shape[1]]
        for block in self.blocks:
            h = block(h, pad)
        h = self.norm(h)
        if self.cls is not None:
            return self.head(h[:, 0])
        if pad is None:
            return self.head(h.mean(1))
        keep = (~pad).unsqueeze(-1).float()
        return self.head((h * keep).sum(1) / keep.sum(1).clamp(min=1))


# ----------------------------------------------------------------------------- training helpers
def correct_and_confidence(model, x, y, batch_size: int = 500):
    """(correct booleans, probability of the predicted class) on a test set, in eval mode."""
    model.eval()
    with torch.no_grad():
        probs = torch.cat([torch.softmax(model(x[i:i + batch_size]), 1) for i in range(0, len(x), batch_size)])
    pred = probs.argmax(1)
    return (pred == y).numpy(), probs.max(1).values.numpy()


def timed_epoch_seconds(model, x, y, batch_size: int, lr: float = 1e-3) -> float:
    """Seconds for one training epoch over (x, y) (Adam, cross-entropy): a timing probe."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    start = time.perf_counter()
    for i in range(0, len(x), batch_size):
        loss = F.cross_entropy(model(x[i:i + batch_size]), y[i:i + batch_size])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start
