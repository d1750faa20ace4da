"""Self-attention through an ``nn.MultiheadAttention``'s own parameters (the authors' state-dict keys),
for the case query is key: one packed q/k projection and no sequence-first transposes. Same math as
``nn.MultiheadAttention(batch_first=True)``, with fewer matmuls per r18vd training step (mm + addmm:
136 + 50 before, 118 + 56 now; bias-free matmuls on transposed inputs became fused addmm)."""

from contextlib import contextmanager

import torch
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


@torch.no_grad()
def split_in_projection(mha: nn.MultiheadAttention) -> None:
    """Give the packed input projection two modules of its own, `qk_proj` (E -> 2E) and `v_proj` (E -> E),
    holding the same numbers (the QAT form): a quantizer placed on modules sees these matmuls, which
    `F.linear` on slices of `in_proj_weight` hides. State-dict keys become `self_attn.qk_proj.*` and
    `self_attn.v_proj.*` in place of `self_attn.in_proj_weight/bias`."""
    if hasattr(mha, "qk_proj"):
        return
    e = mha.embed_dim
    w, b = mha.in_proj_weight, mha.in_proj_bias
    qk_proj = nn.Linear(e, 2 * e, bias=b is not None).to(w.device, w.dtype)
    v_proj = nn.Linear(e, e, bias=b is not None).to(w.device, w.dtype)
    qk_proj.weight.copy_(w[: 2 * e])
    v_proj.weight.copy_(w[2 * e:])
    if b is not None:
        qk_proj.bias.copy_(b[: 2 * e])
        v_proj.bias.copy_(b[2 * e:])
    del mha.in_proj_weight, mha.in_proj_bias
    mha.in_proj_weight = mha.in_proj_bias = None  # nn.MultiheadAttention's own attributes stay defined
    mha.qk_proj, mha.v_proj = qk_proj, v_proj


def self_attention(mha: nn.MultiheadAttention, qk, value, attn_mask=None):
    """qk: (N, L, E) used as query and key; value: (N, L, E); attn_mask: (L, L) bool, True = masked out
    (nn.MultiheadAttention's convention)."""
    e, h = mha.embed_dim, mha.num_heads
    n, length, _ = qk.shape
    if hasattr(mha, "qk_proj"):  # the QAT form (split_in_projection)
        q, k = mha.qk_proj(qk).split(e, dim=-1)
        v = mha.v_proj(value)
    else:
        w, b = mha.in_proj_weight, mha.in_proj_bias
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
