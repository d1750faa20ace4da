"""PyTorch backend: a checkpoint (or a model in memory) run eagerly, with the same post-processing as the
exported graphs. The one place PyTorch inference is written: predict, parity, export's golden data and
the benchmarks all come through `torch_outputs`."""

import numpy as np
import torch

from .base import Runtime


@torch.no_grad()
def torch_outputs(model, images: np.ndarray, sizes=None):
    """images [N,3,H,W] float32 in [0,1]. With `sizes` ([N,2] (w, h)): post-processed labels, boxes (xyxy
    pixels), scores as the exported graphs give them; without: sigmoid scores [N,Q,C] and boxes [N,Q,4]
    (cxcywh, normalised) before top-k, as the raw twin gives them. numpy arrays out."""
    from ..model.postprocess import DeployModel

    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(device)
    if sizes is None:
        out = model(x)
        return out["pred_logits"].sigmoid().cpu().numpy(), out["pred_boxes"].cpu().numpy()
    labels, boxes, scores = DeployModel(model).eval()(x, torch.from_numpy(np.asarray(sizes, np.int64)).to(device))
    return labels.cpu().numpy(), boxes.cpu().numpy(), scores.cpu().numpy()


class TorchRuntime(Runtime):
    backend = "torch"

    def __init__(self, path, manifest=None, imgsz=None, sampling="grid_sample", raw=False, device="cpu",
                 model=None):
        """`path`: a checkpoint (ours, the authors', or a shipped model's name); or pass a loaded `model`."""
        super().__init__(path if model is None else "<model>", manifest)
        if model is None:
            from ..model.checkpoint import load_model

            model = load_model(path, imgsz=imgsz or self.imgsz, sampling=sampling)
        self.model = model.eval().to(device)
        self.imgsz = self.model.imgsz
        self.batch = "dynamic"
        self.class_names = self.model.class_names
        self.raw = raw

    def _run(self, images, sizes):
        return torch_outputs(self.model, images, None if self.raw else sizes)
