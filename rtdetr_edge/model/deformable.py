"""Multi-scale deformable attention (RT-DETRv2: per-level sampling points) and its sampling methods.

Three ways to read the value maps at the sampling locations, chosen per model (`set_sampling`):

- ``grid_sample``: ``F.grid_sample`` bilinear, zeros padding, ``align_corners=False`` -- the reference.
- ``gather``: the same bilinear math written with index arithmetic and one Gather per level, for
  runtimes without a GridSample op (TFLite, TensorRT < 8.5, NPUs). Equal to ``grid_sample`` up to
  float rounding (tests hold it to 1e-5), not an approximation.
- ``discrete``: nearest-point sampling as in the authors' ``discrete`` mode, with x clamped to the
  width and y to the height (the authors clamp both to the height, wrong for non-square inputs).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import init

from ..vocab import SAMPLINGS as SAMPLING_METHODS

# grid_sample projects the values on each level's channel-first map (MSDeformableAttention.project_maps);
# False: on the tokens, then a transpose into maps (as before 2026-12-02; benchmarks/value_maps.py)
VALUE_MAPS = True
# grid_sample sums each level's weighted samples and adds the levels; False: one Concat of all levels' samples,
# then one weighted sum (as before 2026-12-03; benchmarks/value_maps.py --change sum_and_pool)
LEVEL_SUM = True
# with as many points on every level: the levels' weighted samples added, then one sum over the points; False:
# one sum per level (as before the afternoon of 2026-12-03; benchmarks/value_maps.py)
POINT_SUM_ONCE = True
# the sampling locations computed on the flat [bs, Lq, n_head * sum(P) * 2] offsets (sampling_locations); False:
# broadcasts over [bs, Lq, n_head, sum(P), 2] (as before the afternoon of 2026-12-03; benchmarks/value_maps.py)
FLAT_LOCATIONS = True
# grid_sample's value projection in the form a module is set to (RTDETR.set_value_projection; the export sets
# "matmul" for OpenVINO); False: the 1x1 convolution whatever the setting (as before 2026-12-03;
# benchmarks/value_maps.py --change value_matmul)
VALUE_MATMUL = True
VALUE_PROJECTIONS = ("conv", "matmul")


def _check_method(method: str) -> str:
    if method == "default":  # the authors' name for grid_sample
        return "grid_sample"
    if method not in SAMPLING_METHODS:
        raise ValueError(f"unknown sampling method {method!r}; choose one of {', '.join(SAMPLING_METHODS)}")
    return method


def deformable_attention_core(value, spatial_shapes, sampling_locations, attention_weights, num_points_list,
                              method="grid_sample"):
    """Weighted sum of values sampled at `sampling_locations`.

    value: [bs, Len_v, n_head, c] (the tokens of all levels), or for ``grid_sample`` the list of per-level
    maps [bs * n_head, c, h, w] that grid_sample reads (`MSDeformableAttention` projects the values into them
    directly); spatial_shapes: [(h, w), ...] python ints, one per level;
    sampling_locations: [bs, Len_q, n_head, sum(P), 2] in [0, 1] (x, y);
    attention_weights: [bs, Len_q, n_head, sum(P)] (softmax over all points of all levels).
    Returns [bs, Len_q, n_head * c].
    """
    method = _check_method(method)
    if method == "grid_sample":
        if torch.is_tensor(value):
            value = _maps_of_tokens(value, spatial_shapes)
        return _core_grid_sample(value, sampling_locations, attention_weights, num_points_list)
    bs, len_v, n_head, c = value.shape
    len_q = sampling_locations.shape[1]

    # gather / discrete: one row per (batch, token, head) of the values as they are, [bs * Len_v * n_head, c]
    # (no transpose of all tokens); the row of (b, head, token) is (b * Len_v + token) * n_head + head
    table = value.reshape(-1, c)
    locs = sampling_locations.permute(0, 2, 1, 3, 4).flatten(0, 1)  # [BH, Len_q, sumP, 2]
    weights = attention_weights.permute(0, 2, 1, 3).flatten(0, 1)  # [BH, Len_q, sumP]
    locs_list = locs.split(list(num_points_list), dim=-2)
    weights_list = weights.split(list(num_points_list), dim=-1)
    bh = bs * n_head
    heads = torch.arange(bh, device=value.device)
    out = None
    start = 0
    for level, (h, w) in enumerate(spatial_shapes):
        base = ((heads // n_head) * len_v * n_head + heads % n_head + start * n_head).reshape(bh, 1, 1, 1)
        start += h * w
        loc = locs_list[level]
        if method == "gather":
            # the unnormalisation and weights of grid_sample (align_corners=False)
            gx = ((2 * loc[..., 0] - 1 + 1) * w - 1) / 2
            gy = ((2 * loc[..., 1] - 1 + 1) * h - 1) / 2
            x0 = torch.floor(gx)
            y0 = torch.floor(gy)
            x1 = x0 + 1
            y1 = y0 + 1
            xs = torch.stack([x0, x1, x0, x1], dim=-1)  # [BH, Lq, P, 4]
            ys = torch.stack([y0, y0, y1, y1], dim=-1)
            wx = torch.stack([x1 - gx, gx - x0, x1 - gx, gx - x0], dim=-1)
            wy = torch.stack([y1 - gy, y1 - gy, gy - y0, gy - y0], dim=-1)
            valid = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
            corner_w = wx * wy * valid.to(wx.dtype)
            idx = (ys.clamp(0, h - 1).to(torch.int64) * w + xs.clamp(0, w - 1).to(torch.int64)) * n_head + base
            sampled = table[idx.flatten()].reshape(bh, len_q, -1, 4, c)
            sampled = (sampled * corner_w.unsqueeze(-1)).sum(-2)  # [BH, Lq, P, c]
        else:  # discrete: the authors' rounding (x*w + 0.5, truncated), clamped per axis
            ix = (loc[..., 0] * w + 0.5).clamp(0, w - 1).to(torch.int64)
            iy = (loc[..., 1] * h + 0.5).clamp(0, h - 1).to(torch.int64)
            idx = (iy * w + ix).unsqueeze(-1) * n_head + base
            sampled = table[idx.flatten()].reshape(bh, len_q, -1, c)
        contrib = (sampled * weights_list[level].unsqueeze(-1)).sum(-2)  # [BH, Lq, c]
        out = contrib if out is None else out + contrib
    return out.reshape(bs, n_head, len_q, c).permute(0, 2, 1, 3).reshape(bs, len_q, n_head * c)


def _maps_of_tokens(value, spatial_shapes):
    """[bs, Len_v, n_head, c] tokens -> per-level maps [bs * n_head, c, h, w] (a transpose of all tokens)."""
    bs, _, n_head, c = value.shape
    flat = value.permute(0, 2, 3, 1).flatten(0, 1).split([h * w for h, w in spatial_shapes], dim=-1)
    return [f.reshape(bs * n_head, c, h, w) for f, (h, w) in zip(flat, spatial_shapes)]


def _core_grid_sample(value_maps, sampling_locations, attention_weights, num_points_list):
    bs, len_q, n_head = sampling_locations.shape[:3]
    c = value_maps[0].shape[1]
    grids = (2 * sampling_locations - 1).permute(0, 2, 1, 3, 4).flatten(0, 1)
    grids_list = grids.split(list(num_points_list), dim=-2)
    sampled = []
    for level, value_l in enumerate(value_maps):
        sampled.append(F.grid_sample(value_l, grids_list[level], mode="bilinear", padding_mode="zeros",
                                     align_corners=False))  # [BH, c, Lq, P]
    weights = attention_weights.permute(0, 2, 1, 3).reshape(bs * n_head, 1, len_q, sum(num_points_list))
    if LEVEL_SUM:
        # no Concat of the samples: OpenVINO runs that Concat (4-D, on the last axis) with its reference kernel.
        # With as many points on every level the weighted samples are added elementwise and summed over the points
        # once: one reduction per layer instead of one per level (a reduction over a last axis of 4 is the slow
        # part: docs/int8.md)
        once = POINT_SUM_ONCE and len(set(num_points_list)) == 1
        out = None
        for s, w_l in zip(sampled, weights.split(list(num_points_list), dim=-1)):
            contrib = s * w_l if once else (s * w_l).sum(-1)  # [BH, c, Lq, P] or [BH, c, Lq]
            out = contrib if out is None else out + contrib
        if once:
            out = out.sum(-1)
    else:
        out = (torch.cat(sampled, dim=-1) * weights).sum(-1)
    return out.reshape(bs, n_head * c, len_q).permute(0, 2, 1)


class MSDeformableAttention(nn.Module):
    def __init__(self, embed_dim=256, num_heads=8, num_levels=3, num_points=4, method="grid_sample",
                 offset_scale=0.5):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.offset_scale = offset_scale
        self.num_points_list = list(num_points) if isinstance(num_points, (list, tuple)) else [num_points] * num_levels
        if len(self.num_points_list) != num_levels:
            raise ValueError("num_points must give one count per level")
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise ValueError("embed_dim must be divisible by num_heads")
        self.method = _check_method(method)
        self.value_projection = "conv"  # grid_sample's value projection form (project_maps)
        scale = [1 / n for n in self.num_points_list for _ in range(n)]
        self.register_buffer("num_points_scale", torch.tensor(scale, dtype=torch.float32))
        total = num_heads * sum(self.num_points_list)
        self.sampling_offsets = nn.Linear(embed_dim, total * 2)
        self.attention_weights = nn.Linear(embed_dim, total)
        self.value_proj = nn.Linear(embed_dim, embed_dim)
        self.output_proj = nn.Linear(embed_dim, embed_dim)
        self._reset_parameters()

    def _reset_parameters(self):
        init.constant_(self.sampling_offsets.weight, 0)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True).values
        grid = grid.reshape(self.num_heads, 1, 2).tile([1, sum(self.num_points_list), 1])
        scaling = torch.cat([torch.arange(1, n + 1) for n in self.num_points_list]).reshape(1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_((grid * scaling).flatten())
        init.constant_(self.attention_weights.weight, 0)
        init.constant_(self.attention_weights.bias, 0)
        init.xavier_uniform_(self.value_proj.weight)
        init.constant_(self.value_proj.bias, 0)
        init.xavier_uniform_(self.output_proj.weight)
        init.constant_(self.output_proj.bias, 0)

    @property
    def projection_form(self) -> str:
        """The form project_maps writes: `value_projection`, unless the VALUE_MATMUL switch is off."""
        return self.value_projection if VALUE_MATMUL else "conv"

    def project_maps(self, maps):
        """The value projection for ``grid_sample``, on the channel-first maps [bs, C, h, w] of each level: a
        1x1 convolution with `value_proj`'s weights, whose output is already the [bs * n_head, c, h, w] layout
        grid_sample reads. Projecting the tokens [bs, Len_v, C] instead needs a transpose of all 8,400 x 256
        values per decoder layer, which OpenVINO runs with a slow reference kernel (docs/int8_profile.md).
        modelopt's quantizers of `value_proj` (a QuantLinear in the QAT form) are applied as its own forward
        would: the input per tensor, the weight per output channel.

        `value_projection` "matmul" writes the same product as W @ X on the flattened maps [bs, C, h*w]: its
        output is channel-first whatever layout the runtime keeps the maps in. OpenVINO runs its convolutions
        channel-last (int8) or blocked (f32), so the 1x1 convolution's output was reordered to the planar layout
        GridSample reads, 6.5 MB of float per decoder layer at 640; the matrix product reads the maps (int8 in
        the s8s8 file, a quarter of that) planar and writes planar float (docs/int8.md)."""
        m = self.value_proj
        weight = m.weight
        in_q = getattr(m, "input_quantizer", None)
        if in_q is not None:
            weight = m.weight_quantizer(weight)
        out = []
        for f in maps:
            f = in_q(f) if in_q is not None else f
            h, w = f.shape[2:]
            if self.projection_form == "matmul":
                v = torch.matmul(weight, f.flatten(2))
                if m.bias is not None:
                    v = v + m.bias[:, None]
            else:
                v = F.conv2d(f, weight.reshape(*weight.shape, 1, 1), m.bias)
            out.append(v.reshape(-1, self.head_dim, h, w))
        return out

    def sampling_locations(self, offsets, reference_points):
        """[bs, Lq, n_head, sum(P), 2] (x, y): each point's reference centre plus its offset times the box
        size, `num_points_scale` and `offset_scale`.

        offsets: the `sampling_offsets` output [bs, Lq, n_head * sum(P) * 2]; reference_points [bs, Lq, 1, 4].
        The arithmetic runs on that flat last axis, with the per-point factors as one row and the boxes repeated
        along it: the same products as the broadcast over [bs, Lq, n_head, sum(P), 2] (bit for bit while
        `offset_scale` is a power of two), which onnxruntime runs element by element on a last axis of 2 (0.34
        ms per Mul or Add at 640, three per decoder layer: docs/int8_profile.md)."""
        bs, len_q = offsets.shape[:2]
        n_pts = sum(self.num_points_list)
        if not FLAT_LOCATIONS:
            offsets = offsets.reshape(bs, len_q, self.num_heads, n_pts, 2)
            scale = self.num_points_scale.to(dtype=reference_points.dtype).unsqueeze(-1)
            offset = offsets * scale * reference_points[:, :, None, :, 2:] * self.offset_scale
            return reference_points[:, :, None, :, :2] + offset
        rows = self.num_heads * n_pts
        # in the boxes' dtype, as the broadcast form had it (the query's): under autocast the fp16 offsets are
        # promoted to float32 here, not multiplied in fp16
        factor = (self.num_points_scale.to(dtype=reference_points.dtype) * self.offset_scale).repeat_interleave(2)
        # the boxes broadcast to every point (Expand: onnxruntime 40 us against 141 for Tile, OpenVINO's Tile is
        # a reference kernel)
        ref = reference_points[:, :, :1]
        xy = ref[..., :2].expand(bs, len_q, rows, 2).reshape(bs, len_q, rows * 2)
        wh = ref[..., 2:].expand(bs, len_q, rows, 2).reshape(bs, len_q, rows * 2)
        locations = xy + offsets * factor.repeat(self.num_heads) * wh
        return locations.reshape(bs, len_q, self.num_heads, n_pts, 2)

    def forward(self, query, reference_points, value, spatial_shapes, value_maps=None):
        """query [bs, Lq, C]; reference_points [bs, Lq, 1, 4] (cx, cy, w, h in [0, 1]);
        value [bs, Len_v, C] (the tokens of all levels); spatial_shapes [(h, w), ...]; value_maps: the same
        values as channel-first maps [bs, C, h, w] per level (``grid_sample`` projects those, when given)."""
        bs, len_q = query.shape[:2]
        if self.method == "grid_sample" and VALUE_MAPS:
            if value_maps is None:
                value_maps = [t.reshape(bs, h, w, -1).permute(0, 3, 1, 2) for t, (h, w) in
                              zip(value.split([h * w for h, w in spatial_shapes], dim=1), spatial_shapes)]
            value = self.project_maps(value_maps)
        else:
            value = self.value_proj(value).reshape(bs, value.shape[1], self.num_heads, self.head_dim)
        n_pts = sum(self.num_points_list)
        weights = self.attention_weights(query).reshape(bs, len_q, self.num_heads, n_pts)
        weights = F.softmax(weights, dim=-1)
        locations = self.sampling_locations(self.sampling_offsets(query), reference_points)
        out = deformable_attention_core(value, spatial_shapes, locations, weights, self.num_points_list,
                                        self.method)
        return self.output_proj(out)
