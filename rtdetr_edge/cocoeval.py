"""COCO bbox metrics (faster-coco-eval) and the one conversion of detections to COCO results.

No PyTorch: the same code scores the PyTorch model in training and an exported artifact on a device.
"""

import contextlib
import io
import math

import numpy as np

from .errors import UserError

METRICS = ["AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large"]


def to_coco_results(image_id, labels, boxes, scores, category_ids, top=100) -> list:
    """One image's detections (labels index `category_ids`; boxes xyxy pixels) -> COCO results entries,
    the `top` best by score."""
    order = np.argsort(-np.asarray(scores), kind="stable")[:top]
    out = []
    for k in order:
        x0, y0, x1, y1 = (float(v) for v in boxes[k])
        out.append({"image_id": image_id, "category_id": category_ids[int(labels[k])],
                    "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(scores[k])})
    return out


def coco_eval(ann_file, detections, category_ids, class_names, image_ids=None) -> dict:
    """Standard COCO bbox metrics of `detections` (COCO results format, the file's own category ids)
    against `ann_file`; crowd regions are handled by the library as COCO does (ignored). `image_ids`
    restricts the evaluation to the images that were run (e.g. the first N with --max-images)."""
    from faster_coco_eval import COCO, COCOeval_faster

    if not all(math.isfinite(d["score"]) and all(map(math.isfinite, d["bbox"])) for d in detections):
        raise UserError("the model's outputs are not finite (NaN or inf scores or boxes): its weights are "
                        "broken or its training diverged")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        if not detections:
            return {**{m: 0.0 for m in METRICS}, "per_class": {n: 0.0 for n in class_names},
                    "num_detections": 0}
        dt = gt.loadRes(detections)
        ev = COCOeval_faster(gt, dt, iouType="bbox", print_function=lambda *a, **k: None)
        if image_ids is not None:
            ev.params.imgIds = sorted(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = [float(s) for s in ev.stats[:6]]
    precision = ev.eval["precision"]  # [iou thresholds, recall, classes, areas, max dets]
    cat_index = {cid: k for k, cid in enumerate(ev.params.catIds)}
    per_class = {}
    for cid, name in zip(category_ids, class_names):
        p = precision[:, :, cat_index[cid], 0, -1] if cid in cat_index else np.array([-1.0])
        per_class[name] = float(p[p > -1].mean()) if (p > -1).any() else float("nan")
    out = dict(zip(METRICS, [max(s, 0.0) for s in stats]))
    out["per_class"] = per_class
    out["num_detections"] = len(detections)
    return out


def predict(runtime, dataset, batch=4, progress=None, indices=None) -> dict:
    """image id -> its COCO results entries, for the dataset's images (or those at `indices`)."""
    from .preprocess import preprocess

    if runtime.class_names is not None and len(runtime.class_names) != dataset.num_classes:
        raise UserError(f"the model has {len(runtime.class_names)} classes, {dataset.ann_file} has "
                        f"{dataset.num_classes}")
    indices = range(len(dataset)) if indices is None else list(indices)
    out = {}
    for start in range(0, len(indices), batch):
        items = [dataset.load(i) for i in indices[start:start + batch]]
        images, sizes = preprocess([im for im, _ in items], runtime.imgsz)
        labels, boxes, scores = runtime.infer(images, sizes)
        for (_, t), lab, box, sc in zip(items, labels, boxes, scores):
            out[t["image_id"]] = to_coco_results(t["image_id"], lab, box, sc, dataset.category_ids)
        if progress:
            progress(len(items))
    return out


def score(dataset, detections: dict, matches=False) -> dict:
    """COCO metrics of per-image detections (image id -> results entries) on the dataset's images; with
    `matches`, also the per-image matches (apstats.Matches) an AP difference's interval is computed from."""
    image_ids = [im["id"] for im in dataset.images]
    dets = [d for i in image_ids for d in detections[i]]
    metrics = coco_eval(dataset.ann_file, dets, dataset.category_ids, dataset.class_names, image_ids=image_ids)
    if matches:
        from .apstats import match

        metrics["matches"] = match(dataset.ann_file, dets, image_ids)
    return metrics


def evaluate_runtime(runtime, dataset, batch=4, progress=None, matches=False) -> dict:
    """COCO metrics of any runtime (exported artifact or PyTorch) on a CocoDetection's images; with
    `matches`, also the per-image matches (apstats.Matches) an AP difference's interval is computed from."""
    return score(dataset, predict(runtime, dataset, batch, progress), matches)
