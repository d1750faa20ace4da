"""Hybrid encoder: input projections, AIFI (one transformer layer on S5) and CCFM fusion.

Module names follow the authors' `HybridEncoder` so their checkpoints load without a mapping.
"""

import copy
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import self_attention
from .backbone import ConvNormLayer, get_activation


class RepVggBlock(nn.Module):
    """3x3 conv-BN + 1x1 conv-BN, summed; `convert_to_deploy` fuses both into one 3x3 conv."""

    def __init__(self, ch_in, ch_out, act="relu"):
        super().__init__()
        self.ch_in, self.ch_out = ch_in, ch_out
        self.conv1 = ConvNormLayer(ch_in, ch_out, 3, 1, padding=1, act=None)
        self.conv2 = ConvNormLayer(ch_in, ch_out, 1, 1, padding=0, act=None)
        self.act = get_activation(act)

    def forward(self, x):
        y = self.conv(x) if hasattr(self, "conv") else self.conv1(x) + self.conv2(x)
        return self.act(y)

    @torch.no_grad()
    def convert_to_deploy(self):
        if not hasattr(self, "conv1"):  # fused already (a deploy- or QAT-form checkpoint)
            return
        k3, b3 = _fuse_conv_bn(self.conv1)
        k1, b1 = _fuse_conv_bn(self.conv2)
        if not hasattr(self, "conv"):
            self.conv = nn.Conv2d(self.ch_in, self.ch_out, 3, 1, padding=1).to(k3.device, k3.dtype)
        self.conv.weight.copy_(k3 + F.pad(k1, [1, 1, 1, 1]))
        self.conv.bias.copy_(b3 + b1)
        del self.conv1, self.conv2


def _fuse_conv_bn(branch: ConvNormLayer):
    kernel = branch.conv.weight
    bn = branch.norm
    std = (bn.running_var + bn.eps).sqrt()
    t = (bn.weight / std).reshape(-1, 1, 1, 1)
    bias = bn.bias - bn.running_mean * bn.weight / std
    if branch.conv.bias is not None:
        bias = bias + branch.conv.bias * bn.weight / std
    return kernel * t, bias


class CSPRepLayer(nn.Module):
    def __init__(self, in_channels, out_channels, num_blocks=3, expansion=1.0, act="silu"):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = ConvNormLayer(in_channels, hidden, 1, 1, act=act)
        self.conv2 = ConvNormLayer(in_channels, hidden, 1, 1, act=act)
        self.bottlenecks = nn.Sequential(*[RepVggBlock(hidden, hidden, act=act) for _ in range(num_blocks)])
        self.conv3 = ConvNormLayer(hidden, out_channels, 1, 1, act=act) if hidden != out_channels else nn.Identity()

    def forward(self, x):
        return self.conv3(self.bottlenecks(self.conv1(x)) + self.conv2(x))


class TransformerEncoderLayer(nn.Module):
    """Post-norm self-attention + FFN (the AIFI layer)."""

    def __init__(self, d_model, nhead, dim_feedforward=1024, dropout=0.0, activation="gelu"):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout, batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = get_activation(activation)

    def forward(self, src, pos_embed=None):
        attn = self_attention(self.self_attn, src if pos_embed is None else src + pos_embed, src)
        src = self.norm1(src + self.dropout1(attn))
        ffn = self.linear2(self.dropout(self.activation(self.linear1(src))))
        return self.norm2(src + self.dropout2(ffn))


class TransformerEncoder(nn.Module):
    def __init__(self, encoder_layer, num_layers):
        super().__init__()
        self.layers = nn.ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])

    def forward(self, src, pos_embed=None):
        for layer in self.layers:
            src = layer(src, pos_embed=pos_embed)
        return src


def build_2d_sincos_position_embedding(h: int, w: int, embed_dim: int = 256, temperature: float = 10000.0,
                                       dtype=torch.float32, device=None) -> torch.Tensor:
    """[1, h*w, embed_dim] in row-major order, channels [sin y | cos y | sin x | cos x].

    At square sizes this is exactly the authors' embedding; unlike their meshgrid it keeps x and y
    apart for non-square feature maps.
    """
    if embed_dim % 4:
        raise ValueError("embed_dim must be divisible by 4 for the 2-D sin-cos embedding")
    # numpy, not torch: exporters (TorchScript, torch.export) then see a constant, not float64 ops
    pos_dim = embed_dim // 4
    omega = 1.0 / temperature ** (np.arange(pos_dim, dtype=np.float64) / pos_dim)
    gy, gx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    out_y = gy.reshape(-1, 1) * omega[None]
    out_x = gx.reshape(-1, 1) * omega[None]
    pe = np.concatenate([np.sin(out_y), np.cos(out_y), np.sin(out_x), np.cos(out_x)], axis=1)[None]
    return torch.from_numpy(pe).to(dtype=dtype, device=device)


class HybridEncoder(nn.Module):
    def __init__(self, in_channels=(512, 1024, 2048), feat_strides=(8, 16, 32), hidden_dim=256, nhead=8,
                 dim_feedforward=1024, dropout=0.0, enc_act="gelu", use_encoder_idx=(2,), num_encoder_layers=1,
                 pe_temperature=10000, expansion=1.0, depth_mult=1.0, act="silu"):
        super().__init__()
        self.in_channels = list(in_channels)
        self.feat_strides = list(feat_strides)
        self.hidden_dim = hidden_dim
        self.use_encoder_idx = list(use_encoder_idx)
        self.num_encoder_layers = num_encoder_layers
        self.pe_temperature = pe_temperature
        self.out_channels = [hidden_dim] * len(in_channels)
        self.out_strides = list(feat_strides)
        self._pe_cache = {}

        self.input_proj = nn.ModuleList(
            nn.Sequential(OrderedDict([
                ("conv", nn.Conv2d(c, hidden_dim, kernel_size=1, bias=False)),
                ("norm", nn.BatchNorm2d(hidden_dim)),
            ])) for c in in_channels)
        layer = TransformerEncoderLayer(hidden_dim, nhead, dim_feedforward, dropout, enc_act)
        self.encoder = nn.ModuleList(
            TransformerEncoder(copy.deepcopy(layer), num_encoder_layers) for _ in self.use_encoder_idx)

        n = len(in_channels)
        blocks = round(3 * depth_mult)
        self.lateral_convs = nn.ModuleList(ConvNormLayer(hidden_dim, hidden_dim, 1, 1, act=act) for _ in range(n - 1))
        self.fpn_blocks = nn.ModuleList(
            CSPRepLayer(hidden_dim * 2, hidden_dim, blocks, expansion=expansion, act=act) for _ in range(n - 1))
        self.downsample_convs = nn.ModuleList(
            ConvNormLayer(hidden_dim, hidden_dim, 3, 2, act=act) for _ in range(n - 1))
        self.pan_blocks = nn.ModuleList(
            CSPRepLayer(hidden_dim * 2, hidden_dim, blocks, expansion=expansion, act=act) for _ in range(n - 1))

    def position_embedding(self, h, w, dtype, device):
        key = (h, w, dtype, str(device))
        if key not in self._pe_cache:
            self._pe_cache[key] = build_2d_sincos_position_embedding(
                h, w, self.hidden_dim, self.pe_temperature, dtype=dtype, device=device)
        return self._pe_cache[key]

    def forward(self, feats):
        proj = [self.input_proj[i](f) for i, f in enumerate(feats)]
        for i, idx in enumerate(self.use_encoder_idx):
            h, w = int(proj[idx].shape[2]), int(proj[idx].shape[3])
            src = proj[idx].flatten(2).permute(0, 2, 1)
            pos = self.position_embedding(h, w, src.dtype, src.device)
            memory = self.encoder[i](src, pos_embed=pos)
            proj[idx] = memory.permute(0, 2, 1).reshape(-1, self.hidden_dim, h, w).contiguous()

        # top-down (FPN)
        n = len(self.in_channels)
        inner = [proj[-1]]
        for idx in range(n - 1, 0, -1):
            high = self.lateral_convs[n - 1 - idx](inner[0])
            inner[0] = high
            up = F.interpolate(high, scale_factor=2.0, mode="nearest")
            inner.insert(0, self.fpn_blocks[n - 1 - idx](torch.cat([up, proj[idx - 1]], dim=1)))
        # bottom-up (PAN)
        outs = [inner[0]]
        for idx in range(n - 1):
            down = self.downsample_convs[idx](outs[-1])
            outs.append(self.pan_blocks[idx](torch.cat([down, inner[idx + 1]], dim=1)))
        return outs
