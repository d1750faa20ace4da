"""RT-DETRv2 transformer decoder: query selection, deformable decoder layers, heads.

Module names follow the authors' ``RTDETRTransformerv2`` (``decoder.*`` in their checkpoints).
"""

import copy
import math
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import init

from .attention import self_attention
from .box_ops import inverse_sigmoid
from .deformable import MSDeformableAttention

# the encoder's box head runs on the k selected tokens only (it is per token, so the boxes are the same);
# False: on all tokens, then a gather (as before 2026-12-03; benchmarks/value_maps.py --change boxes_of_topk)
BOXES_OF_TOPK = True
# each level's map becomes tokens by a channel-last transpose, then a reshape ([bs, h, w, C] -> [bs, h*w, C]):
# onnxruntime's int8 convolutions write channel-last maps, so its layout pass cancels that transpose against its
# own one back to channel-first; False: flatten, then transpose the tokens (as before 2026-12-03;
# benchmarks/value_maps.py --change channel_last_tokens)
CHANNEL_LAST_TOKENS = True
from .denoising import get_contrastive_denoising_training_group


class MLP(nn.Module):
    def __init__(self, input_dim, hidden_dim, output_dim, num_layers):
        super().__init__()
        dims = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + dims, dims + [output_dim]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class TransformerDecoderLayer(nn.Module):
    def __init__(self, d_model=256, n_head=8, dim_feedforward=1024, dropout=0.0, n_levels=3, n_points=4,
                 method="grid_sample"):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, n_head, dropout=dropout, batch_first=True)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.cross_attn = MSDeformableAttention(d_model, n_head, n_levels, n_points, method=method)
        self.dropout2 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.activation = nn.ReLU()
        self.dropout3 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.dropout4 = nn.Dropout(dropout)
        self.norm3 = nn.LayerNorm(d_model)
        init.xavier_uniform_(self.linear1.weight)
        init.xavier_uniform_(self.linear2.weight)

    def forward(self, target, reference_points, memory, spatial_shapes, attn_mask=None, query_pos_embed=None,
                memory_maps=None):
        attn = self_attention(self.self_attn, target + query_pos_embed, target, attn_mask)
        target = self.norm1(target + self.dropout1(attn))
        cross = self.cross_attn(target + query_pos_embed, reference_points, memory, spatial_shapes, memory_maps)
        target = self.norm2(target + self.dropout2(cross))
        ffn = self.linear2(self.dropout3(self.activation(self.linear1(target))))
        return self.norm3(target + self.dropout4(ffn))


class TransformerDecoder(nn.Module):
    def __init__(self, decoder_layer, num_layers, eval_idx=-1):
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(decoder_layer) for _ in range(num_layers))
        self.num_layers = num_layers
        self.eval_idx = eval_idx if eval_idx >= 0 else num_layers + eval_idx

    def forward(self, target, ref_points_unact, memory, spatial_shapes, bbox_head, score_head, query_pos_head,
                attn_mask=None, memory_maps=None):
        """Iterative box refinement. Training: every layer's (boxes, logits); eval: the eval layer's only.
        memory: the encoder's tokens [bs, Len_v, C]; memory_maps: the same as channel-first maps per level."""
        boxes, logits = [], []
        ref_detach = F.sigmoid(ref_points_unact)
        ref_points = ref_detach
        output = target
        for i, layer in enumerate(self.layers):
            query_pos = query_pos_head(ref_detach)
            output = layer(output, ref_detach.unsqueeze(2), memory, spatial_shapes, attn_mask, query_pos, memory_maps)
            inter = F.sigmoid(bbox_head[i](output) + inverse_sigmoid(ref_detach))
            if self.training:
                logits.append(score_head[i](output))
                # gradient flows through the previous layer's (undetached) boxes, as released
                boxes.append(inter if i == 0 else F.sigmoid(bbox_head[i](output) + inverse_sigmoid(ref_points)))
            elif i == self.eval_idx:
                logits.append(score_head[i](output))
                boxes.append(inter)
                break
            ref_points = inter
            ref_detach = inter.detach()
        return torch.stack(boxes), torch.stack(logits)


def generate_anchors(spatial_shapes, grid_size=0.05, eps=1e-2, dtype=torch.float32, device="cpu"):
    """Anchors (logit space) for every position of every level, and the mask of valid ones.

    spatial_shapes: [(h, w), ...]. Returns anchors [1, sum(h*w), 4] and valid_mask [1, sum(h*w), 1].
    Invalid anchors (too close to the border) hold the largest finite value, not inf, so exported
    graphs carry no infinities.
    """
    anchors = []
    for lvl, (h, w) in enumerate(spatial_shapes):
        gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        xy = torch.stack([gx, gy], dim=-1).to(torch.float32)
        xy = (xy.unsqueeze(0) + 0.5) / torch.tensor([w, h], dtype=torch.float32)
        wh = torch.ones_like(xy) * grid_size * (2.0 ** lvl)
        anchors.append(torch.cat([xy, wh], dim=-1).reshape(-1, h * w, 4))
    anchors = torch.cat(anchors, dim=1)
    valid = ((anchors > eps) * (anchors < 1 - eps)).all(-1, keepdim=True)
    anchors = torch.log(anchors / (1 - anchors))
    anchors = torch.where(valid, anchors, torch.tensor(torch.finfo(torch.float32).max))
    return anchors.to(dtype=dtype, device=device), valid.to(device)


class RTDETRTransformerv2(nn.Module):
    def __init__(self, num_classes=80, hidden_dim=256, num_queries=300, feat_channels=(256, 256, 256),
                 feat_strides=(8, 16, 32), num_levels=3, num_points=(4, 4, 4), nhead=8, num_layers=6,
                 dim_feedforward=1024, dropout=0.0, num_denoising=100, label_noise_ratio=0.5, box_noise_scale=1.0,
                 eval_spatial_size=(640, 640), eval_idx=-1, method="grid_sample"):
        super().__init__()
        if len(feat_channels) != num_levels:
            raise ValueError("feat_channels must have one entry per level")
        self.hidden_dim = hidden_dim
        self.num_classes = num_classes
        self.num_queries = num_queries
        self.feat_strides = list(feat_strides)
        self.num_levels = num_levels
        self.num_layers = num_layers
        self.num_denoising = num_denoising
        self.label_noise_ratio = label_noise_ratio
        self.box_noise_scale = box_noise_scale
        self._anchor_cache = {}

        self.input_proj = nn.ModuleList(
            nn.Sequential(OrderedDict([
                ("conv", nn.Conv2d(ch, hidden_dim, 1, bias=False)),
                ("norm", nn.BatchNorm2d(hidden_dim)),
            ])) for ch in feat_channels)
        layer = TransformerDecoderLayer(hidden_dim, nhead, dim_feedforward, dropout, num_levels, list(num_points),
                                        method=method)
        self.decoder = TransformerDecoder(layer, num_layers, eval_idx)
        if num_denoising > 0:
            self.denoising_class_embed = nn.Embedding(num_classes + 1, hidden_dim, padding_idx=num_classes)
            init.normal_(self.denoising_class_embed.weight[:-1])
        self.query_pos_head = MLP(4, 2 * hidden_dim, hidden_dim, 2)
        self.enc_output = nn.Sequential(OrderedDict([
            ("proj", nn.Linear(hidden_dim, hidden_dim)),
            ("norm", nn.LayerNorm(hidden_dim)),
        ]))
        self.enc_score_head = nn.Linear(hidden_dim, num_classes)
        self.enc_bbox_head = MLP(hidden_dim, hidden_dim, 4, 3)
        self.dec_score_head = nn.ModuleList(nn.Linear(hidden_dim, num_classes) for _ in range(num_layers))
        self.dec_bbox_head = nn.ModuleList(MLP(hidden_dim, hidden_dim, 4, 3) for _ in range(num_layers))
        # size-dependent; recomputed for the size asked for, never loaded from a checkpoint
        self.register_buffer("anchors", torch.empty(0), persistent=False)
        self.register_buffer("valid_mask", torch.empty(0, dtype=torch.bool), persistent=False)
        self._anchor_shapes = None
        self.set_eval_spatial_size(eval_spatial_size)
        self._reset_parameters()

    def _reset_parameters(self):
        bias = -math.log((1 - 0.01) / 0.01)  # prior probability 0.01
        init.constant_(self.enc_score_head.bias, bias)
        init.constant_(self.enc_bbox_head.layers[-1].weight, 0)
        init.constant_(self.enc_bbox_head.layers[-1].bias, 0)
        for cls_, reg_ in zip(self.dec_score_head, self.dec_bbox_head):
            init.constant_(cls_.bias, bias)
            init.constant_(reg_.layers[-1].weight, 0)
            init.constant_(reg_.layers[-1].bias, 0)
        init.xavier_uniform_(self.enc_output[0].weight)
        init.xavier_uniform_(self.query_pos_head.layers[0].weight)
        init.xavier_uniform_(self.query_pos_head.layers[1].weight)
        for m in self.input_proj:
            init.xavier_uniform_(m[0].weight)

    def set_eval_spatial_size(self, size):
        """Precompute anchors for an input size (h, w); other sizes are computed (and cached) on the fly."""
        if size is None:
            self._anchor_shapes = None
            return
        h, w = size
        shapes = [(h // s, w // s) for s in self.feat_strides]
        device = self.enc_score_head.weight.device
        self.anchors, self.valid_mask = generate_anchors(shapes, device=device)
        self._anchor_shapes = shapes

    def _anchors_for(self, shapes, dtype, device):
        if shapes == self._anchor_shapes and self.anchors.device == torch.device(device):
            return self.anchors.to(dtype), self.valid_mask
        key = (tuple(shapes), dtype, str(device))
        if key not in self._anchor_cache:
            self._anchor_cache[key] = generate_anchors(shapes, dtype=dtype, device=device)
        return self._anchor_cache[key]

    def _get_encoder_input(self, feats):
        """The tokens [bs, sum(h*w), C] of all levels, their shapes, and the maps [bs, C, h, w] they come from."""
        proj = [self.input_proj[i](f) for i, f in enumerate(feats)]
        flat, shapes = [], []
        for f in proj:
            h, w = int(f.shape[2]), int(f.shape[3])
            flat.append(f.permute(0, 2, 3, 1).flatten(1, 2) if CHANNEL_LAST_TOKENS else f.flatten(2).permute(0, 2, 1))
            shapes.append((h, w))
        return torch.cat(flat, dim=1), shapes, proj

    def _num_queries(self, memory):
        # fewer encoder tokens than queries only happens below ~128x128 px: then select them all
        return min(self.num_queries, int(memory.shape[1]))

    def _get_decoder_input(self, memory, shapes, dn_content=None, dn_bbox_unact=None):
        anchors, valid_mask = self._anchors_for(shapes, memory.dtype, memory.device)
        memory = valid_mask.to(memory.dtype) * memory
        output_memory = self.enc_output(memory)
        enc_logits = self.enc_score_head(output_memory)
        k = self._num_queries(memory)
        _, topk_ind = torch.topk(enc_logits.max(-1).values, k, dim=-1)
        selected = output_memory.gather(1, topk_ind.unsqueeze(-1).repeat(1, 1, output_memory.shape[-1]))
        if BOXES_OF_TOPK:
            # the 3-layer box MLP on k (300) tokens instead of all (8,400 at 640): 1.1 GMAC less per image
            topk_anchors = anchors.expand(memory.shape[0], -1, -1).gather(
                1, topk_ind.unsqueeze(-1).repeat(1, 1, anchors.shape[-1]))
            topk_coords = self.enc_bbox_head(selected) + topk_anchors
        else:
            enc_coord_unact = self.enc_bbox_head(output_memory) + anchors
            topk_coords = enc_coord_unact.gather(1, topk_ind.unsqueeze(-1).repeat(1, 1, enc_coord_unact.shape[-1]))
        content = selected.detach()
        enc_aux = None
        if self.training:
            topk_logits = enc_logits.gather(1, topk_ind.unsqueeze(-1).repeat(1, 1, enc_logits.shape[-1]))
            enc_aux = [{"pred_logits": topk_logits, "pred_boxes": F.sigmoid(topk_coords)}]
        ref_unact = topk_coords.detach()
        if dn_bbox_unact is not None:
            ref_unact = torch.cat([dn_bbox_unact, ref_unact], dim=1)
            content = torch.cat([dn_content, content], dim=1)
        return content, ref_unact, enc_aux

    def forward(self, feats, targets=None):
        memory, shapes, maps = self._get_encoder_input(feats)
        dn_content = dn_bbox = attn_mask = dn_meta = None
        if self.training and self.num_denoising > 0 and targets is not None:
            dn_content, dn_bbox, attn_mask, dn_meta = get_contrastive_denoising_training_group(
                targets, self.num_classes, self._num_queries(memory), self.denoising_class_embed,
                num_denoising=self.num_denoising, label_noise_ratio=self.label_noise_ratio,
                box_noise_scale=self.box_noise_scale)
        content, ref_unact, enc_aux = self._get_decoder_input(memory, shapes, dn_content, dn_bbox)
        out_boxes, out_logits = self.decoder(content, ref_unact, memory, shapes, self.dec_bbox_head,
                                             self.dec_score_head, self.query_pos_head, attn_mask=attn_mask,
                                             memory_maps=maps)
        if self.training and dn_meta is not None:
            dn_out_boxes, out_boxes = torch.split(out_boxes, dn_meta["dn_num_split"], dim=2)
            dn_out_logits, out_logits = torch.split(out_logits, dn_meta["dn_num_split"], dim=2)
        out = {"pred_logits": out_logits[-1], "pred_boxes": out_boxes[-1]}
        if self.training:
            out["aux_outputs"] = [{"pred_logits": a, "pred_boxes": b} for a, b in zip(out_logits[:-1], out_boxes[:-1])]
            out["enc_aux_outputs"] = enc_aux
            if dn_meta is not None:
                out["dn_aux_outputs"] = [{"pred_logits": a, "pred_boxes": b}
                                         for a, b in zip(dn_out_logits, dn_out_boxes)]
                out["dn_meta"] = dn_meta
        return out
