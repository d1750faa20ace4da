"""ResNet-vd backbone ("PResNet" in the authors' code), with their module names.

Variant d: a three-conv 3x3 stem, the stride on the 3x3 conv of a bottleneck, and an average-pool
shortcut (pool 2x2 then 1x1 conv) where a block downsamples. The first block of every stage has a
projection shortcut. Returns C3, C4, C5 (strides 8, 16, 32).
"""

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters (buffers, as the authors')."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.eps = eps
        self.num_features = num_features

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        bias = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1)


def freeze_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d below `module` by a FrozenBatchNorm2d holding the same values."""
    if isinstance(module, nn.BatchNorm2d):
        frozen = FrozenBatchNorm2d(module.num_features, module.eps)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(frozen, name).copy_(getattr(module, name).detach())
        return frozen
    for name, child in module.named_children():
        new = freeze_batch_norm(child)
        if new is not child:
            setattr(module, name, new)
    return module


@torch.no_grad()
def fold_batch_norm(module: nn.Module) -> int:
    """Fold every normalisation that follows a conv (a child pair named `conv` + `norm`: ConvNormLayer and
    the input projections) into the conv's weight and bias, and replace the norm by Identity. The numbers
    stay the same in eval mode; in training the statistics stay frozen (the QAT form: a quantizer then sees
    the weights that run on the device, where BatchNorm is folded the same way). Returns the count."""
    count = 0
    for m in list(module.modules()):
        conv, norm = getattr(m, "conv", None), getattr(m, "norm", None)
        if not isinstance(conv, nn.Conv2d) or not isinstance(norm, (nn.BatchNorm2d, FrozenBatchNorm2d)):
            continue
        scale = norm.weight * (norm.running_var + norm.eps).rsqrt()
        bias = norm.bias - norm.running_mean * scale
        if conv.bias is not None:
            bias = bias + conv.bias * scale
        folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                           conv.dilation, conv.groups, bias=True).to(conv.weight.device, conv.weight.dtype)
        folded.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        folded.bias.copy_(bias)
        folded.weight.requires_grad_(conv.weight.requires_grad)
        folded.bias.requires_grad_(conv.weight.requires_grad)
        m.conv, m.norm = folded, nn.Identity()
        count += 1
    return count


class ConvNormLayer(nn.Module):
    def __init__(self, ch_in, ch_out, kernel_size, stride, padding=None, bias=False, act=None):
        super().__init__()
        padding = (kernel_size - 1) // 2 if padding is None else padding
        self.conv = nn.Conv2d(ch_in, ch_out, kernel_size, stride, padding=padding, bias=bias)
        self.norm = nn.BatchNorm2d(ch_out)
        self.act = get_activation(act)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


def get_activation(name):
    if name is None:
        return nn.Identity()
    table = {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}
    return table[name]()


def _shortcut(ch_in, ch_out, stride):
    if stride == 2:  # variant d: average-pool, then a stride-1 projection
        return nn.Sequential(OrderedDict([
            ("pool", nn.AvgPool2d(2, 2, 0, ceil_mode=True)),
            ("conv", ConvNormLayer(ch_in, ch_out, 1, 1)),
        ]))
    return ConvNormLayer(ch_in, ch_out, 1, stride)


class _Residual(nn.Module):
    """A residual block's sum. INT8 (quant/fakequant.py add_sum_quantizers) puts 8-bit quantizers on both of its
    inputs: `sum_quantizer` on the branch's last convolution output, `shortcut_quantizer` on a shortcut
    convolution's output, and an identity or pooled shortcut reads the block input through the quantizer its
    first layer already has (the same range). A runtime then adds the shortcut inside the convolution."""

    def __init__(self):
        super().__init__()
        self.sum_quantizer = None
        self.shortcut_quantizer = None

    def _sum(self, out, x, first):
        if self.sum_quantizer is None:
            return self.act(out + (x if self.shortcut else self.short(x)))
        if self.shortcut:
            short = first.conv.input_quantizer(x)
        elif isinstance(self.short, nn.Sequential):  # variant d: the pool reads the quantized input
            short = self.shortcut_quantizer(self.short.conv(self.short.pool(first.conv.input_quantizer(x))))
        else:
            short = self.shortcut_quantizer(self.short(x))
        return self.act(self.sum_quantizer(out) + short)


class BasicBlock(_Residual):
    expansion = 1

    def __init__(self, ch_in, ch_out, stride, shortcut):
        super().__init__()
        self.shortcut = shortcut
        if not shortcut:
            self.short = _shortcut(ch_in, ch_out, stride)
        self.branch2a = ConvNormLayer(ch_in, ch_out, 3, stride, act="relu")
        self.branch2b = ConvNormLayer(ch_out, ch_out, 3, 1, act=None)
        self.act = nn.ReLU()

    def forward(self, x):
        return self._sum(self.branch2b(self.branch2a(x)), x, self.branch2a)


class BottleNeck(_Residual):
    expansion = 4

    def __init__(self, ch_in, ch_out, stride, shortcut):
        super().__init__()
        width = ch_out
        self.branch2a = ConvNormLayer(ch_in, width, 1, 1, act="relu")
        self.branch2b = ConvNormLayer(width, width, 3, stride, act="relu")  # stride on the 3x3
        self.branch2c = ConvNormLayer(width, ch_out * self.expansion, 1, 1)
        self.shortcut = shortcut
        if not shortcut:
            self.short = _shortcut(ch_in, ch_out * self.expansion, stride)
        self.act = nn.ReLU()

    def forward(self, x):
        return self._sum(self.branch2c(self.branch2b(self.branch2a(x))), x, self.branch2a)


class Blocks(nn.Module):
    def __init__(self, block, ch_in, ch_out, count, stage_num):
        super().__init__()
        self.blocks = nn.ModuleList()
        for i in range(count):
            stride = 2 if i == 0 and stage_num != 2 else 1
            self.blocks.append(block(ch_in, ch_out, stride=stride, shortcut=i != 0))
            if i == 0:
                ch_in = ch_out * block.expansion

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


RESNET_DEPTHS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}


class PResNet(nn.Module):
    """ResNet-vd returning the feature maps of stages `return_idx` (default C3, C4, C5)."""

    def __init__(self, depth: int, return_idx=(1, 2, 3), freeze_norm: bool = False, freeze_at: int = -1):
        super().__init__()
        if depth not in RESNET_DEPTHS:
            raise ValueError(f"ResNet depth must be one of {sorted(RESNET_DEPTHS)}, got {depth}")
        block = BottleNeck if depth >= 50 else BasicBlock
        ch_in = 64
        stem = [[3, ch_in // 2, 3, 2, "conv1_1"], [ch_in // 2, ch_in // 2, 3, 1, "conv1_2"],
                [ch_in // 2, ch_in, 3, 1, "conv1_3"]]
        self.conv1 = nn.Sequential(OrderedDict(
            (name, ConvNormLayer(cin, cout, k, s, act="relu")) for cin, cout, k, s, name in stem))
        ch_out_list = [64, 128, 256, 512]
        self.res_layers = nn.ModuleList()
        for i, count in enumerate(RESNET_DEPTHS[depth]):
            self.res_layers.append(Blocks(block, ch_in, ch_out_list[i], count, stage_num=i + 2))
            ch_in = ch_out_list[i] * block.expansion
        self.return_idx = list(return_idx)
        self.out_channels = [ch_out_list[i] * block.expansion for i in self.return_idx]
        self.out_strides = [[4, 8, 16, 32][i] for i in self.return_idx]
        if freeze_at >= 0:  # as released for r50/r101: the stem (and stages < freeze_at) not trained
            for p in self.conv1.parameters():
                p.requires_grad_(False)
            for i in range(min(freeze_at, len(self.res_layers))):
                for p in self.res_layers[i].parameters():
                    p.requires_grad_(False)
        if freeze_norm:
            freeze_batch_norm(self)

    def forward(self, x):
        x = self.conv1(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        outs = []
        for idx, stage in enumerate(self.res_layers):
            x = stage(x)
            if idx in self.return_idx:
                outs.append(x)
        return outs
