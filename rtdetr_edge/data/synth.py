"""A deterministic, generated COCO-format dataset: the embedded default (nothing is downloaded).

Six shape classes (circle, square, triangle, star, hexagon, cross) of varied size (from ~6% to ~45% of
the image side, log-uniform: about a third are COCO-"small" at 320 px), colour, rotation and aspect, cut
by the image border (at least 40% of a shape inside) and partly occluding each other (at most 40% of an
object hidden), on textured, cluttered backgrounds: smooth colour fields, noise, lines, and distractor blobs and
arcs that belong to no class. About 8% of images hold no object. Image i of a split is a pure function
of (seed, split, i).
"""

import json
import math
from pathlib import Path

import numpy as np

CLASSES = ["circle", "square", "triangle", "star", "hexagon", "cross"]
MAX_OCCLUSION = 0.4
MIN_INSIDE = 0.4  # a shape cut by the border keeps at least this much of itself in the image
SIZE_RANGE = (0.06, 0.45)  # shape size as a fraction of the image side (log-uniform)


def _polygon(kind: str, cx, cy, size, angle, aspect, rng):
    if kind == "circle":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t) * aspect], 1)
    elif kind == "square":
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * [0.85, 0.85 * aspect]
    elif kind == "triangle":
        t = np.array([90, 210, 330]) * np.pi / 180
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif kind == "star":
        t = np.arange(10) * np.pi / 5 + np.pi / 2
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        pts = np.stack([np.cos(t) * r, np.sin(t) * r], 1)
    elif kind == "hexagon":
        t = np.arange(6) * np.pi / 3
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif kind == "cross":
        a, b = 1.0, 0.33
        pts = np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b], [b, a], [-b, a], [-b, b], [-a, b],
                        [-a, -b], [-b, -b]], float)
    else:
        raise ValueError(kind)
    c, s = math.cos(angle), math.sin(angle)
    rot = pts @ np.array([[c, s], [-s, c]])
    return (rot * size / 2 + [cx, cy]).astype(np.float32)


def _background(h, w, rng):
    import cv2

    low = rng.uniform(0, 255, (4, 4, 3)).astype(np.float32)
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w, 3)).astype(np.float32), (0, 0), rng.uniform(0.5, 3))
    img = img + noise * rng.uniform(10, 40)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(3, 12)):  # clutter lines
        p0 = tuple(int(v) for v in rng.integers(0, [w, h]))
        p1 = tuple(int(v) for v in rng.integers(0, [w, h]))
        cv2.line(img, p0, p1, tuple(int(v) for v in rng.integers(0, 255, 3)), int(rng.integers(1, 4)), cv2.LINE_AA)
    for _ in range(rng.integers(2, 8)):  # distractor blobs and arcs (no class)
        center = tuple(int(v) for v in rng.integers(0, [w, h]))
        axes = tuple(int(v) for v in rng.integers(3, max(4, min(h, w) // 8), 2))
        color = tuple(int(v) for v in rng.integers(0, 255, 3))
        if rng.random() < 0.5:
            cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), 0, float(rng.uniform(60, 300)), color,
                        int(rng.integers(1, 4)), cv2.LINE_AA)
        else:
            k = int(rng.integers(7, 14))  # irregular, non-convex: unlike any class
            t = np.sort(rng.uniform(0, 2 * np.pi, k))
            r = rng.uniform(0.3, 1.0, k)
            pts = (np.stack([np.cos(t), np.sin(t)], 1) * r[:, None] * axes + center).astype(np.int32)
            cv2.fillPoly(img, [pts], color, cv2.LINE_AA)
    return img


def render_image(seed: int, split: str, index: int, imgsz: int):
    """Return (RGB uint8 image, list of (class index, [x, y, w, h], visible area))."""
    import cv2

    split_id = {"train": 1, "val": 2}.get(split, 3)
    rng = np.random.default_rng([seed, split_id, index])
    h = w = imgsz
    img = _background(h, w, rng)
    owner = np.full((h, w), -1, np.int32)  # which object each pixel shows
    objects = []
    n = 0 if rng.random() < 0.08 else int(rng.integers(1, 9))
    attempts = 0
    while len(objects) < n and attempts < n * 8:
        attempts += 1
        cls = int(rng.integers(0, len(CLASSES)))
        size = float(np.exp(rng.uniform(np.log(SIZE_RANGE[0] * imgsz), np.log(SIZE_RANGE[1] * imgsz))))
        cx, cy = rng.uniform(-0.1, 1.1, 2) * [w, h]
        poly = _polygon(CLASSES[cls], cx, cy, size, rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.0), rng)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
        area = int(mask.sum())
        if area < 30 or area < MIN_INSIDE * cv2.contourArea(poly):  # slivers at the border: not labelable
            continue
        ys, xs = np.nonzero(mask)
        # keep every earlier object at least 60% visible
        covered = np.bincount(owner[mask.astype(bool)] + 1, minlength=len(objects) + 1)[1:]
        visible = np.array([o["visible"] for o in objects], dtype=np.int64)
        if len(objects) and np.any(visible - covered < (1 - MAX_OCCLUSION) * np.array([o["area"] for o in objects])):
            continue
        for i, c in enumerate(covered):
            objects[i]["visible"] -= int(c)
        color = rng.integers(0, 256, 3)
        if rng.random() < 0.3:  # two-tone / textured fill
            tex = np.clip(color + rng.normal(0, 35, (h, w, 1)), 0, 255).astype(np.uint8)
            img = np.where(mask[..., None].astype(bool), tex, img)
        else:
            cv2.fillPoly(img, [np.round(poly).astype(np.int32)], tuple(int(v) for v in color), cv2.LINE_AA)
        if rng.random() < 0.4:
            edge = tuple(int(v) for v in rng.integers(0, 256, 3))
            cv2.polylines(img, [np.round(poly).astype(np.int32)], True, edge, int(rng.integers(1, 3)), cv2.LINE_AA)
        owner[mask.astype(bool)] = len(objects)
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        objects.append({"cls": cls, "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], "area": area,
                        "visible": area})
    return img, [(o["cls"], o["bbox"], o["visible"]) for o in objects]


def generate(out, n_train: int = 400, n_val: int = 100, imgsz: int = 320, seed: int = 0, progress=None) -> Path:
    """Write OUT/{train,val}/*.jpg and OUT/annotations/instances_{train,val}.json (COCO format).

    Written into a temporary folder beside OUT and renamed at the end: never a half-written dataset.
    """
    import cv2

    from ..errors import UserError
    from ..fsutil import atomic_dir

    if n_train < 0 or n_val < 0 or imgsz < 32:
        raise UserError("--train/--val must be >= 0 and --imgsz >= 32")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out}: exists and is not an empty folder; choose another folder")
    if out.exists():
        out.rmdir()
    with atomic_dir(out) as tmp:
        (tmp / "annotations").mkdir()
        categories = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(CLASSES)]
        for split, count in (("train", n_train), ("val", n_val)):
            (tmp / split).mkdir()
            images, annotations = [], []
            for i in range(count):
                img, objs = render_image(seed, split, i, imgsz)
                name = f"{split}_{i:06d}.jpg"
                cv2.imwrite(str(tmp / split / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 95])
                images.append({"id": i + 1, "file_name": name, "width": imgsz, "height": imgsz})
                for cls, bbox, area in objs:
                    annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": cls + 1,
                                        "bbox": bbox, "area": float(area), "iscrowd": 0})
                if progress:
                    progress()
            with open(tmp / "annotations" / f"instances_{split}.json", "w") as f:
                json.dump({"images": images, "annotations": annotations, "categories": categories,
                           "info": {"description": f"rtdetr-edge synthetic shapes, seed {seed}"}}, f)
    return out
