"""Contrastive denoising groups (DINO / RT-DETR), used in training only."""

import torch

from .box_ops import box_cxcywh_to_xyxy, box_xyxy_to_cxcywh, inverse_sigmoid


def get_contrastive_denoising_training_group(targets, num_classes, num_queries, class_embed, num_denoising=100,
                                             label_noise_ratio=0.5, box_noise_scale=1.0):
    """Noised copies of the ground truth as extra decoder queries.

    targets: list of dicts with ``labels`` [n] (int64) and ``boxes`` [n, 4] (cxcywh, normalised).
    Each group holds a positive copy (small box noise, to reconstruct) and a negative copy (larger
    noise, to reject) of every ground-truth box. Returns (query content [bs, D, C], reference boxes
    as logits [bs, D, 4], attention mask [D+Q, D+Q] with True = blocked, meta dict) or four Nones
    when there is nothing to denoise.
    """
    if num_denoising <= 0:
        return None, None, None, None
    num_gts = [len(t["labels"]) for t in targets]
    device = targets[0]["labels"].device
    max_gt = max(num_gts)
    if max_gt == 0:
        return None, None, None, None
    num_group = max(num_denoising // max_gt, 1)
    bs = len(num_gts)

    query_class = torch.full([bs, max_gt], num_classes, dtype=torch.int32, device=device)
    query_bbox = torch.zeros([bs, max_gt, 4], device=device)
    pad_mask = torch.zeros([bs, max_gt], dtype=torch.bool, device=device)
    for i, n in enumerate(num_gts):
        if n:
            query_class[i, :n] = targets[i]["labels"].to(torch.int32)
            query_bbox[i, :n] = targets[i]["boxes"]
            pad_mask[i, :n] = True
    query_class = query_class.tile([1, 2 * num_group])
    query_bbox = query_bbox.tile([1, 2 * num_group, 1])
    pad_mask = pad_mask.tile([1, 2 * num_group])
    negative = torch.zeros([bs, max_gt * 2, 1], device=device)
    negative[:, max_gt:] = 1
    negative = negative.tile([1, num_group, 1])
    positive = (1 - negative).squeeze(-1) * pad_mask
    dn_positive_idx = torch.nonzero(positive)[:, 1]
    dn_positive_idx = torch.split(dn_positive_idx, [n * num_group for n in num_gts])
    num_dn = int(max_gt * 2 * num_group)

    if label_noise_ratio > 0:
        flip = torch.rand(query_class.shape, device=device) < (label_noise_ratio * 0.5)
        new_label = torch.randint_like(query_class, 0, num_classes)
        query_class = torch.where(flip & pad_mask, new_label, query_class)
    if box_noise_scale > 0:
        known = box_cxcywh_to_xyxy(query_bbox)
        diff = torch.tile(query_bbox[..., 2:] * 0.5, [1, 1, 2]) * box_noise_scale
        sign = torch.randint_like(query_bbox, 0, 2) * 2.0 - 1.0
        part = torch.rand_like(query_bbox)
        part = (part + 1.0) * negative + part * (1 - negative)
        known = (known + sign * part * diff).clip(0.0, 1.0)
        query_bbox = box_xyxy_to_cxcywh(known)
    bbox_unact = inverse_sigmoid(query_bbox)
    content = class_embed(query_class)

    size = num_dn + num_queries
    attn_mask = torch.zeros([size, size], dtype=torch.bool, device=device)
    attn_mask[num_dn:, :num_dn] = True  # matching queries cannot see the denoising ones
    for g in range(num_group):  # groups cannot see each other
        s, e = max_gt * 2 * g, max_gt * 2 * (g + 1)
        attn_mask[s:e, :s] = True
        attn_mask[s:e, e:num_dn] = True
    meta = {"dn_positive_idx": dn_positive_idx, "dn_num_group": num_group, "dn_num_split": [num_dn, num_queries]}
    return content, bbox_unact, attn_mask, meta
