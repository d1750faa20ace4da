"""Post-processing as released: sigmoid, top-k over queries x classes, xyxy boxes in pixels."""

import torch
import torch.nn as nn

from .box_ops import box_cxcywh_to_xyxy


class PostProcessor(nn.Module):
    def __init__(self, num_classes: int, num_top_queries: int = 300):
        super().__init__()
        self.num_classes = num_classes
        self.num_top_queries = num_top_queries

    def forward(self, outputs, orig_target_sizes: torch.Tensor):
        """outputs: pred_logits [N,Q,C], pred_boxes [N,Q,4] (cxcywh, normalised);
        orig_target_sizes: [N,2] (w, h) of each original image. Returns labels, boxes (xyxy px), scores,
        each with `num_top_queries` rows per image, best first."""
        logits, boxes = outputs["pred_logits"], outputs["pred_boxes"]
        bbox = box_cxcywh_to_xyxy(boxes) * orig_target_sizes.to(boxes.dtype).repeat(1, 2).unsqueeze(1)
        scores = torch.sigmoid(logits).flatten(1)
        k = min(self.num_top_queries, scores.shape[1])
        scores, index = torch.topk(scores, k, dim=-1)
        # indices are >= 0, so truncation is floor: exported as a plain Div, where "floor" adds Mod and Xor
        # for negative operands (operators TensorRT 8.2 cannot parse)
        query = torch.div(index, self.num_classes, rounding_mode="trunc")
        labels = index - query * self.num_classes
        bbox = bbox.gather(dim=1, index=query.unsqueeze(-1).repeat(1, 1, 4))
        return labels, bbox, scores


class DeployModel(nn.Module):
    """images [N,3,H,W] in [0,1], orig_target_sizes [N,2] (w, h) -> labels, boxes, scores.

    The interface of the authors' ONNX export, so existing RT-DETR inference code runs our files.
    """

    def __init__(self, model: nn.Module, num_top_queries: int = 300):
        super().__init__()
        self.model = model
        self.postprocessor = PostProcessor(model.num_classes, num_top_queries)
        self.train(model.training)

    def forward(self, images, orig_target_sizes):
        return self.postprocessor(self.model(images), orig_target_sizes)
