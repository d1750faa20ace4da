"""Prediction on images with any model the runtime layer loads (a bundle, an exported file, or a
PyTorch checkpoint), and drawing of detections. PyTorch is imported only for a checkpoint."""

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from .errors import UserError
from .fsutil import atomic_path
from .preprocess import list_images, read_image
from .runtime.base import Detections

log = logging.getLogger("rtdetr_edge")


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


def drawn_names(files) -> dict:
    """The file name of each input's drawn image: its stem + .jpg (photo.png -> photo.jpg), or its whole name + .jpg
    where another input has the same stem (photo.jpg and photo.png -> photo.jpg.jpg and photo.png.jpg), so no
    drawn image replaces another (a name still taken is numbered)."""
    stems = Counter(p.stem for p in files)
    names, taken = {}, set()
    for p in files:
        base = p.stem if stems[p.stem] == 1 else p.name
        name, k = base + ".jpg", 1
        while name in taken:  # a.png.jpg beside a.png and a.jpg: numbered
            k += 1
            name = f"{base}-{k}.jpg"
        names[p] = name
        taken.add(name)
    return names


def predict(weights, source, imgsz=None, conf: float = 0.5, save=None, sampling="grid_sample", exported=False,
            skip_bad=False):
    """Yield (path, Detections filtered by conf, class names) for every image of `source`; with `save`,
    write the drawn images there as JPEG (drawn_names). `weights` is a checkpoint, or with exported=True a
    bundle folder or exported model file run by its runtime."""
    import cv2

    from .model.variants import parse_imgsz
    from .runtime.base import open_model

    imgsz = parse_imgsz(imgsz) if isinstance(imgsz, (str, int)) else imgsz
    files = list_images(source)
    if exported:  # --model: a bundle or exported file, never read as a checkpoint
        from .runtime.base import load_runtime

        runtime = load_runtime(weights)
    else:
        runtime = open_model(weights, imgsz=imgsz, sampling=sampling)
    names = runtime.class_names or []  # a bare file carries no names: labels print as numbers
    if save is not None:
        save = Path(save)
        if save.exists() and not save.is_dir():
            raise UserError(f"--save {save}: exists and is not a folder")
        drawn = drawn_names(files)
        inputs = {p.resolve() for p in files}
        clash = next((p for p in files if (save / drawn[p]).resolve() in inputs), None)
        if clash is not None:  # a drawn image would replace a photo of the user's
            raise UserError(f"--save {save}: would write over the input {clash}; choose another folder")
        save.mkdir(parents=True, exist_ok=True)
    for path in files:
        try:
            image = read_image(path)
        except UserError as e:
            if not skip_bad:
                raise UserError(f"{e} (pass --skip-bad to go on without it)") from None
            log.warning("%s", e)
            continue
        det = runtime.detect([image])[0].filter(conf)
        if save is not None:
            with atomic_path(save / drawn[path], suffix=".jpg") as tmp:
                if not cv2.imwrite(str(tmp), draw(image, det, names)):
                    raise UserError(f"{save / drawn[path]}: cannot write the drawn image")
        yield path, det, names
