"""Parameter and FLOP counts, measured on the model itself (no numbers copied from the paper)."""

import torch
from torch.utils.flop_counter import FlopCounterMode

from .rtdetr import build_model, count_parameters


def model_stats(variant: str, imgsz=(640, 640), num_classes: int = 80) -> tuple:
    """(parameters of the training form, GFLOPs of the deploy form at imgsz, batch 1).

    GFLOPs count 2 x multiply-accumulates of convolutions, linear layers and matrix products as
    torch's FlopCounterMode does; the model runs on the meta device, so nothing is computed.
    """
    with torch.device("meta"):
        model = build_model(variant, num_classes=num_classes, imgsz=imgsz)
        params = count_parameters(model)
        model.deploy()
        x = torch.empty(1, 3, *imgsz)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return params, counter.get_total_flops() / 1e9
