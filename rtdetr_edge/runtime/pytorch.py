"""PyTorch backend: a checkpoint run eagerly, with the same post-processing as the exported graphs."""

import numpy as np
import torch

from .base import Runtime


class TorchRuntime(Runtime):
    backend = "torch"

    def __init__(self, path, manifest=None, imgsz=None, sampling="grid_sample", raw=False, device="cpu"):
        super().__init__(path, manifest)
        from ..model.checkpoint import load_model
        from ..model.postprocess import DeployModel

        self.model = load_model(path, imgsz=imgsz or self.imgsz, sampling=sampling).to(device)
        self.deploy = DeployModel(self.model).eval()
        self.imgsz = self.model.imgsz
        self.batch = "dynamic"
        self.class_names = self.model.class_names
        self.raw = raw
        self.device = device

    @torch.no_grad()
    def _run(self, images, sizes):
        x = torch.from_numpy(images).to(self.device)
        if self.raw:
            out = self.model(x)
            return out["pred_logits"].sigmoid().cpu().numpy(), out["pred_boxes"].cpu().numpy()
        labels, boxes, scores = self.deploy(x, torch.from_numpy(sizes.astype(np.int64)).to(self.device))
        return labels.cpu().numpy(), boxes.cpu().numpy(), scores.cpu().numpy()
