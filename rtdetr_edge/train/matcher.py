"""Hungarian matching of predictions to ground truth (RT-DETR's focal-cost matcher)."""

import torch
import torch.nn as nn
from scipy.optimize import linear_sum_assignment

from ..model.box_ops import box_cxcywh_to_xyxy, generalized_box_iou


class HungarianMatcher(nn.Module):
    """One-to-one assignment minimising 2*focal class cost + 5*L1 + 2*(-GIoU), per image.

    outputs: pred_logits [bs, Q, C], pred_boxes [bs, Q, 4] (cxcywh normalised);
    targets: list of dicts with labels [n_i] and boxes [n_i, 4] (cxcywh normalised).
    Returns a list of (pred_index [k], target_index [k]) int64 tensors, k = min(Q, n_i).
    """

    def __init__(self, cost_class=2.0, cost_bbox=5.0, cost_giou=2.0, alpha=0.25, gamma=2.0):
        super().__init__()
        self.cost_class, self.cost_bbox, self.cost_giou = cost_class, cost_bbox, cost_giou
        self.alpha, self.gamma = alpha, gamma

    @torch.no_grad()
    def forward(self, outputs, targets):
        bs, nq = outputs["pred_logits"].shape[:2]
        sizes = [len(t["boxes"]) for t in targets]
        empty = torch.zeros(0, dtype=torch.int64)
        if sum(sizes) == 0:
            return [(empty, empty) for _ in targets]
        prob = outputs["pred_logits"].flatten(0, 1).float().sigmoid()
        out_bbox = outputs["pred_boxes"].flatten(0, 1).float()
        tgt_ids = torch.cat([t["labels"] for t in targets])
        tgt_bbox = torch.cat([t["boxes"] for t in targets]).float()
        p = prob[:, tgt_ids]
        neg = (1 - self.alpha) * (p ** self.gamma) * (-(1 - p + 1e-8).log())
        pos = self.alpha * ((1 - p) ** self.gamma) * (-(p + 1e-8).log())
        cost_class = pos - neg
        cost_bbox = torch.cdist(out_bbox, tgt_bbox, p=1)
        cost_giou = -generalized_box_iou(box_cxcywh_to_xyxy(out_bbox), box_cxcywh_to_xyxy(tgt_bbox))
        c = self.cost_bbox * cost_bbox + self.cost_class * cost_class + self.cost_giou * cost_giou
        c = c.view(bs, nq, -1).cpu()
        indices = []
        for i, block in enumerate(c.split(sizes, -1)):
            rows, cols = linear_sum_assignment(block[i].numpy())
            indices.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return indices
