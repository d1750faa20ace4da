"""COCO-format dataset reader for any `instances_*.json` + image folder.

- Category ids (any, non-contiguous) map to contiguous labels 0..C-1 in id order, and back.
- `iscrowd` regions are not training targets; evaluation leaves them to the COCO library (ignored
  regions), which reads the same annotation file.
- One validation pass, one policy: every problem is counted by kind and reported (`report()`), never
  silently. Boxes outside the image are clipped; boxes of zero area after clipping, boxes with non-finite
  numbers, annotations of unknown images or categories, non-integer category ids, images with a
  non-positive size and images whose id is listed twice (with their annotations: they cannot be told
  apart) are left out. A split with no usable box is an error.
- Images without annotations are kept. Images of any mode (gray, RGBA, 16-bit) become RGB uint8.
- A malformed JSON, a missing or unreadable image is a UserError naming the file; with
  `skip_bad=True` a missing/unreadable image is a warning and the image is left out.
"""

import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..preprocess import read_image

log = logging.getLogger("rtdetr_edge")


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path}: annotation file not found")
    try:
        with open(path) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: malformed JSON ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a COCO annotation file (top level is not an object)")
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise UserError(f"{path}: not a COCO annotation file (no '{key}' list)")
    if not isinstance(data.get("annotations", []), list):
        raise UserError(f"{path}: 'annotations' is not a list")
    return data


def _is_int(v) -> bool:
    """COCO ids are integers (faster-coco-eval and our targets hold them as int64); a bool is not one."""
    return isinstance(v, int) and not isinstance(v, bool)


class CocoDetection:
    """Items: (RGB uint8 image [H,W,3], target) with target = {boxes [n,4] xyxy pixels float32,
    labels [n] int64, image_id int, orig_size (w, h)}."""

    def __init__(self, ann_file, img_dir, transforms=None, skip_bad: bool = False):
        self.ann_file = Path(ann_file)
        self.img_dir = Path(img_dir)
        self.transforms = transforms
        self.skip_bad = skip_bad
        data = _load_json(self.ann_file)
        if not self.img_dir.is_dir():
            raise UserError(f"{self.img_dir}: image folder not found")
        try:
            cats = sorted(data["categories"], key=lambda c: c["id"])
            if not all(_is_int(c["id"]) for c in cats):
                raise TypeError
            self.category_ids = [c["id"] for c in cats]
            self.class_names = [str(c.get("name", c["id"])) for c in cats]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UserError(f"{self.ann_file}: every category needs an integer 'id' (and a 'name')") from None
        if not self.category_ids:
            raise UserError(f"{self.ann_file}: no categories")
        twice = sorted(c for c, n in Counter(self.category_ids).items() if n > 1)
        if twice:
            raise UserError(f"{self.ann_file}: category id {twice[0]} is listed more than once in 'categories'")
        self.cat_to_label = {cid: i for i, cid in enumerate(self.category_ids)}
        self.stats = {"clipped": 0, "dropped_zero_area": 0, "crowd": 0, "missing_images": 0,
                      "unreadable_images": 0, "unknown_category": 0, "non_integer_category_id": 0,
                      "non_finite_box": 0, "unknown_image_id": 0, "duplicate_image_id": 0, "bad_image_size": 0}

        for n, img in enumerate(data["images"]):
            if not isinstance(img, dict):
                raise UserError(f"{self.ann_file}: image entry {n + 1} (of 'images') is not an object")
            if not _is_int(img.get("id")):
                raise UserError(f"{self.ann_file}: image entry {n + 1} (of 'images') needs an integer id, "
                                f"not {json.dumps(img.get('id'))[:40]}")
        ids = [img["id"] for img in data["images"]]
        seen, duplicated = set(), set()
        for i in ids:
            (duplicated if i in seen else seen).add(i)
        known_ids = seen - duplicated
        anns_by_image = {}
        for n, a in enumerate(data.get("annotations", [])):
            try:
                image_id, bbox, cid = a["image_id"], a["bbox"], a["category_id"]
                if len(bbox) != 4:
                    raise ValueError
                box = [float(v) for v in bbox]
                if isinstance(cid, bool) or not isinstance(cid, (int, float)) or not _is_int(image_id):
                    raise TypeError
            except (KeyError, TypeError, ValueError):
                which = f"id {a['id']}" if isinstance(a, dict) and "id" in a else f"entry {n + 1}"
                raise UserError(f"{self.ann_file}: annotation {which} "
                                "needs an integer image_id, a numeric category_id and a 4-number bbox") from None
            if image_id in duplicated:
                self.stats["duplicate_image_id"] += 1
                continue
            if image_id not in known_ids:
                self.stats["unknown_image_id"] += 1
                continue
            if float(cid) != int(cid):
                self.stats["non_integer_category_id"] += 1
                continue
            if int(cid) not in self.cat_to_label:
                self.stats["unknown_category"] += 1
                continue
            if not all(np.isfinite(box)):
                self.stats["non_finite_box"] += 1
                continue
            anns_by_image.setdefault(image_id, []).append(a)

        self.images = []
        for img in data["images"]:
            try:
                image_id, file_name = img["id"], str(img["file_name"])
                width, height = float(img["width"]), float(img["height"])
            except (KeyError, TypeError, ValueError):
                raise UserError(f"{self.ann_file}: image entry {img.get('id', '?') if isinstance(img, dict) else '?'}"
                                " needs id, file_name, width, height") from None
            if image_id in duplicated:
                self.stats["duplicate_image_id"] += 1
                continue
            if not (np.isfinite(width) and np.isfinite(height) and width >= 1 and height >= 1):
                self.stats["bad_image_size"] += 1
                continue
            width, height = int(width), int(height)
            path = self.img_dir / file_name
            if not path.is_file():
                if not skip_bad:
                    raise UserError(f"{path}: image not found (listed in {self.ann_file.name})")
                self.stats["missing_images"] += 1
                log.warning("%s: image not found, skipped", path)
                continue
            boxes, labels = [], []
            for a in anns_by_image.get(image_id, []):
                if a.get("iscrowd", 0):
                    self.stats["crowd"] += 1
                    continue
                x, y, w, h = (float(v) for v in a["bbox"])
                x0, y0, x1, y1 = x, y, x + w, y + h
                cx0, cy0 = min(max(x0, 0.0), width), min(max(y0, 0.0), height)
                cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
                if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
                    self.stats["clipped"] += 1
                if cx1 - cx0 <= 0 or cy1 - cy0 <= 0:
                    self.stats["dropped_zero_area"] += 1
                    continue
                boxes.append([cx0, cy0, cx1, cy1])
                labels.append(self.cat_to_label[int(a["category_id"])])
            self.images.append({"id": image_id, "path": path, "width": width, "height": height,
                                "boxes": np.array(boxes, np.float32).reshape(-1, 4),
                                "labels": np.array(labels, np.int64)})
        if not any(len(i["labels"]) for i in self.images):
            problems = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in self.stats.items() if v)
            raise UserError(f"{self.ann_file}: no usable box in {len(self.images)} images"
                            + (f" ({problems})" if problems else ""))
        self._reported = False

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)

    def __len__(self):
        return len(self.images)

    def report(self) -> str:
        parts = [f"{k.replace('_', ' ')}: {v}" for k, v in self.stats.items() if v]
        n_ann = sum(len(i["labels"]) for i in self.images)
        empty = sum(1 for i in self.images if len(i["labels"]) == 0)
        text = (f"{self.ann_file.name}: {len(self)} images ({empty} without objects), {n_ann} boxes, "
                f"{self.num_classes} classes" + (f"; {', '.join(parts)}" if parts else ""))
        return text

    def load(self, index: int):
        """Untransformed (image, target); the image is resized to the JSON's size if the file differs."""
        info = self.images[index]
        try:
            image = read_image(info["path"])
        except UserError:
            if not self.skip_bad:
                raise
            self.stats["unreadable_images"] += 1
            log.warning("%s: unreadable image, replaced by the next one", info["path"])
            return self.load((index + 1) % len(self))
        boxes = info["boxes"].copy()
        h, w = image.shape[:2]
        if (w, h) != (info["width"], info["height"]):  # JSON size is the reference for boxes
            boxes *= np.array([w / info["width"], h / info["height"]] * 2, np.float32)
        target = {"boxes": boxes, "labels": info["labels"].copy(), "image_id": info["id"], "orig_size": (w, h)}
        return image, target

    def __getitem__(self, index):
        image, target = self.load(index)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def resolve_coco_dir(data_dir, split: str):
    """Find (annotation json, image folder) for split 'train' or 'val' in the common COCO layouts:
    annotations/instances_{split}*.json + {split}*/ (e.g. instances_val2017.json + val2017/)."""
    root = Path(data_dir)
    if not root.is_dir():
        raise UserError(f"{root}: data folder not found")
    candidates = sorted((root / "annotations").glob(f"instances_{split}*.json")) + \
        sorted(root.glob(f"instances_{split}*.json"))
    if not candidates:
        raise UserError(f"{root}: no annotations/instances_{split}*.json (or pass --{split}-json and --images)")
    ann = candidates[0]
    suffix = ann.stem[len("instances_"):]
    for folder in (root / suffix, root / split, root / "images" / suffix, root / "images" / split, root / "images"):
        if folder.is_dir():
            return ann, folder
    raise UserError(f"{root}: no image folder for {ann.name} (looked for {suffix}/, {split}/, images/)")
