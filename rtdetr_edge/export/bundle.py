"""Golden data for a bundle (host side, needs PyTorch): a few generated images at the model size and the
PyTorch model's outputs for them, before and after top-k. They travel with the artifact so it can be
re-verified where it lands (`rtdetr-edge parity --model BUNDLE` without --weights, no PyTorch needed).
Reading and verifying bundles is the device side's job: `rtdetr_edge.bundle`."""

import numpy as np

from ..vocab import INPUT_IMAGES, INPUT_SIZES


def golden_images(imgsz, n, seed=7):
    """n generated RGB uint8 images at the model size (h, w) and the 'original' sizes they stand for."""
    from ..data.synth import render_image
    from ..preprocess import resize_to

    h, w = imgsz
    images, sizes = [], []
    for i in range(n):
        img, _ = render_image(seed, "golden", i, max(h, w))
        images.append(resize_to(img, imgsz))
        sizes.append((int(w * (1 + 0.5 * i)), int(h * (1 + 0.25 * i))))  # boxes scale back to these
    return np.stack(images), np.array(sizes, np.int64)


def golden_outputs(model, images_u8, sizes) -> dict:
    from ..bundle import golden_inputs
    from ..runtime.pytorch import torch_outputs

    golden = {INPUT_IMAGES: images_u8, INPUT_SIZES: sizes}
    x, _ = golden_inputs(golden)
    raw_scores, raw_boxes = torch_outputs(model, x)
    labels, boxes, scores = torch_outputs(model, x, sizes)
    return {**golden, "labels": labels, "boxes": boxes, "scores": scores, "raw_scores": raw_scores,
            "raw_boxes": raw_boxes}
