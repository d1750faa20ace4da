"""Prediction on images with a PyTorch checkpoint, and drawing of detections."""

from pathlib import Path

import numpy as np
import torch

from .errors import UserError
from .model.checkpoint import load_model
from .model.postprocess import PostProcessor
from .preprocess import list_images, preprocess, read_image
from .runtime.base import Detections


@torch.no_grad()
def detect(model, images, imgsz=None, batch_size: int = 4) -> list:
    """RGB uint8 images -> one Detections per image (all 300 top detections; filter by score after)."""
    imgsz = tuple(imgsz or model.imgsz)
    post = PostProcessor(model.num_classes)
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        batch, sizes = preprocess(images[start:start + batch_size], imgsz)
        res = model(torch.from_numpy(batch).to(device))
        labels, boxes, scores = post(res, torch.from_numpy(sizes).to(device))
        out += Detections.from_batch(labels.cpu().numpy(), boxes.cpu().numpy(), scores.cpu().numpy())
    return out


def palette(n: int) -> list:
    rng = np.random.default_rng(12345)
    return [tuple(int(c) for c in rng.integers(60, 255, 3)) for _ in range(n)]


def draw(image_rgb: np.ndarray, det: Detections, class_names) -> np.ndarray:
    """Boxes and 'name score' labels drawn on a BGR copy (ready for cv2.imwrite)."""
    import cv2

    img = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    colors = palette(max(len(class_names), 80))
    for label, box, score in zip(det.labels, det.boxes, det.scores):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        color = colors[int(label) % len(colors)]
        cv2.rectangle(img, (x0, y0), (x1, y1), color, 2)
        name = class_names[int(label)] if int(label) < len(class_names) else str(int(label))
        text = f"{name} {score:.2f}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(img, (x0, max(y0 - th - 4, 0)), (x0 + tw + 2, max(y0, th + 4)), color, -1)
        cv2.putText(img, text, (x0 + 1, max(y0 - 3, th + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return img


def predict(weights, source, imgsz=None, conf: float = 0.5, save=None, sampling="grid_sample", exported=False):
    """Yield (path, Detections filtered by conf, class names) for every image of `source`; with `save`,
    write the drawn images there (same file names). `weights` is a checkpoint, or with exported=True a
    bundle folder or exported model file run by its runtime."""
    import cv2

    files = list_images(source)
    if exported:
        from .runtime.base import load_runtime

        runtime = load_runtime(weights)
        names = runtime.class_names or []  # a bare file carries no names: labels print as numbers
        run = lambda image: runtime.detect([image])[0]  # noqa: E731
    else:
        model = load_model(weights, imgsz=imgsz, sampling=sampling)
        names = model.class_names
        run = lambda image: detect(model, [image])[0]  # noqa: E731
    if save is not None:
        save = Path(save)
        save.mkdir(parents=True, exist_ok=True)
    for path in files:
        image = read_image(path)
        det = run(image).filter(conf)
        if save is not None:
            target = save / (path.stem + ".jpg")
            tmp = target.with_name(f".{target.name}.tmp.jpg")
            if not cv2.imwrite(str(tmp), draw(image, det, names)):
                raise UserError(f"{target}: cannot write the drawn image")
            tmp.replace(target)
        yield path, det, names
