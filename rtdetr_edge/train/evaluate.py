"""COCO evaluation (faster-coco-eval) of a model on a COCO-format validation set."""

import contextlib
import io

import numpy as np
import torch

from ..errors import UserError
from ..model.postprocess import PostProcessor

METRICS = ["AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large"]


def collate(batch):
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)


def coco_eval(ann_file, detections, category_ids, class_names) -> dict:
    """Standard COCO bbox metrics of `detections` (COCO results format, the file's own category ids)
    against `ann_file`; crowd regions are handled by the library as COCO does (ignored)."""
    from faster_coco_eval import COCO, COCOeval_faster

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        if not detections:
            return {**{m: 0.0 for m in METRICS}, "per_class": {n: 0.0 for n in class_names},
                    "num_detections": 0}
        dt = gt.loadRes(detections)
        ev = COCOeval_faster(gt, dt, iouType="bbox", print_function=lambda *a, **k: None)
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


@torch.no_grad()
def predict_dataset(model, dataset, batch_size=8, progress=None, num_workers=0) -> list:
    """Run the model over a CocoDetection (eval transforms) and return COCO-format detections."""
    was_training = model.training
    model.eval()
    post = PostProcessor(model.num_classes, num_top_queries=100)
    device = next(model.parameters()).device
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate,
                                         num_workers=num_workers)
    results = []
    for images, targets in loader:
        out = model(images.to(device))
        sizes = torch.tensor([t["orig_size"] for t in targets], device=device)
        labels, boxes, scores = post(out, sizes)
        for t, lab, box, sc in zip(targets, labels.cpu().numpy(), boxes.cpu().numpy(), scores.cpu().numpy()):
            for cls, (x0, y0, x1, y1), s in zip(lab, box, sc):
                results.append({"image_id": t["image_id"], "category_id": dataset.category_ids[int(cls)],
                                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                                "score": float(s)})
        if progress:
            progress(len(targets))
    model.train(was_training)
    return results


def evaluate(model, dataset, batch_size=8, progress=None) -> dict:
    if model.num_classes != dataset.num_classes:
        raise UserError(f"the model has {model.num_classes} classes, {dataset.ann_file} has {dataset.num_classes}")
    dets = predict_dataset(model, dataset, batch_size, progress)
    return coco_eval(dataset.ann_file, dets, dataset.category_ids, dataset.class_names)
