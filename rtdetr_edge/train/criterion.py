"""The RT-DETRv2 criterion: varifocal loss + L1 + GIoU, on the final layer, every auxiliary decoder
layer, the encoder's top-k and the denoising groups (weights as released: vfl 1, bbox 5, giou 2)."""

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from ..model.box_ops import box_cxcywh_to_xyxy, box_iou, generalized_box_iou
from .matcher import HungarianMatcher


class RTDETRCriterion(nn.Module):
    def __init__(self, num_classes, matcher=None, weight_dict=None, alpha=0.75, gamma=2.0):
        super().__init__()
        self.num_classes = num_classes
        self.matcher = matcher or HungarianMatcher()
        self.weight_dict = weight_dict or {"loss_vfl": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0}
        self.alpha, self.gamma = alpha, gamma

    @staticmethod
    def _src_idx(indices):
        batch = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
        src = torch.cat([src for src, _ in indices])
        return batch, src

    def loss_vfl(self, outputs, targets, indices, num_boxes):
        idx = self._src_idx(indices)
        logits = outputs["pred_logits"]
        src_boxes = outputs["pred_boxes"][idx]
        tgt_boxes = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices)], dim=0)
        ious, _ = box_iou(box_cxcywh_to_xyxy(src_boxes), box_cxcywh_to_xyxy(tgt_boxes))
        ious = torch.diag(ious).detach()
        tgt_classes_o = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, indices)])
        tgt_classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device)
        tgt_classes[idx] = tgt_classes_o
        onehot = F.one_hot(tgt_classes, num_classes=self.num_classes + 1)[..., :-1]
        score_o = torch.zeros_like(tgt_classes, dtype=logits.dtype)
        score_o[idx] = ious.to(score_o.dtype)
        tgt_score = score_o.unsqueeze(-1) * onehot
        pred_score = F.sigmoid(logits).detach()
        weight = self.alpha * pred_score.pow(self.gamma) * (1 - onehot) + tgt_score
        loss = F.binary_cross_entropy_with_logits(logits, tgt_score, weight=weight, reduction="none")
        return {"loss_vfl": loss.mean(1).sum() * logits.shape[1] / num_boxes}

    def loss_boxes(self, outputs, targets, indices, num_boxes):
        idx = self._src_idx(indices)
        src = outputs["pred_boxes"][idx]
        tgt = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices)], dim=0)
        l1 = F.l1_loss(src, tgt, reduction="none").sum() / num_boxes
        giou = 1 - torch.diag(generalized_box_iou(box_cxcywh_to_xyxy(src), box_cxcywh_to_xyxy(tgt)))
        return {"loss_bbox": l1, "loss_giou": giou.sum() / num_boxes}

    def _losses(self, outputs, targets, indices, num_boxes, suffix=""):
        out = {}
        for fn in (self.loss_vfl, self.loss_boxes):
            for k, v in fn(outputs, targets, indices, num_boxes).items():
                out[k + suffix] = v * self.weight_dict[k]
        return out

    @staticmethod
    def dn_indices(dn_meta, targets):
        out = []
        for i, t in enumerate(targets):
            n = len(t["labels"])
            if n:
                gt = torch.arange(n, dtype=torch.int64, device=t["labels"].device).tile(dn_meta["dn_num_group"])
                out.append((dn_meta["dn_positive_idx"][i], gt))
            else:
                out.append((torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)))
        return out

    def forward(self, outputs, targets):
        """Weighted loss terms (dict); their sum is the training loss."""
        num_boxes = torch.as_tensor([float(sum(len(t["labels"]) for t in targets))],
                                    device=outputs["pred_logits"].device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(num_boxes)
            num_boxes = num_boxes / dist.get_world_size()
        num_boxes = num_boxes.clamp(min=1).item()
        losses = self._losses(outputs, targets, self.matcher(outputs, targets), num_boxes)
        for i, aux in enumerate(outputs.get("aux_outputs", [])):
            losses.update(self._losses(aux, targets, self.matcher(aux, targets), num_boxes, f"_aux_{i}"))
        for i, aux in enumerate(outputs.get("enc_aux_outputs") or []):
            losses.update(self._losses(aux, targets, self.matcher(aux, targets), num_boxes, f"_enc_{i}"))
        if "dn_meta" in outputs:
            meta = outputs["dn_meta"]
            idx = self.dn_indices(meta, targets)
            for i, aux in enumerate(outputs["dn_aux_outputs"]):
                losses.update(self._losses(aux, targets, idx, num_boxes * meta["dn_num_group"], f"_dn_{i}"))
        return losses
