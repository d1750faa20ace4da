"""Self-attention through an ``nn.MultiheadAttention``'s own parameters (the authors' state-dict keys),
for the case query is key: one packed q/k projection and no sequence-first transposes. Same math as
``nn.MultiheadAttention(batch_first=True)``, with fewer matmuls per r18vd training step (mm + addmm:
136 + 50 before, 118 + 56 now; bias-free matmuls on transposed inputs became fused addmm)."""

from contextlib import contextmanager

import torch.nn as nn
import torch.nn.functional as F

_explicit = False  # set by `explicit_attention()`: softmax(q k^T / sqrt(d)) v written out


@contextmanager
def explicit_attention(on=True):
    """Within this block self-attention is written as matmul + softmax + matmul instead of
    scaled_dot_product_attention: ONNX opsets below 14 (TensorRT 8.2's parser) have no export for the
    latter. Same math; differences of float rounding only."""
    global _explicit
    before, _explicit = _explicit, on
    try:
        yield
    finally:
        _explicit = before


def self_attention(mha: nn.MultiheadAttention, qk, value, attn_mask=None):
    """qk: (N, L, E) used as query and key; value: (N, L, E); attn_mask: (L, L) bool, True = masked out
    (nn.MultiheadAttention's convention)."""
    e, h = mha.embed_dim, mha.num_heads
    w, b = mha.in_proj_weight, mha.in_proj_bias
    n, length, _ = qk.shape
    q, k = F.linear(qk, w[: 2 * e], None if b is None else b[: 2 * e]).split(e, dim=-1)
    v = F.linear(value, w[2 * e:], None if b is None else b[2 * e:])
    q, k, v = (t.view(n, length, h, e // h).transpose(1, 2) for t in (q, k, v))
    if _explicit and not mha.training:
        logits = (q @ k.transpose(-2, -1)) * (e // h) ** -0.5
        if attn_mask is not None:
            logits = logits.masked_fill(attn_mask, float("-inf"))
        return mha.out_proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(n, length, e))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if attn_mask is None else ~attn_mask,
                                         dropout_p=mha.dropout if mha.training else 0.0)
    return mha.out_proj(out.transpose(1, 2).reshape(n, length, e))
