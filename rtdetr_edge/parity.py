"""Parity: does an exported artifact still detect what the PyTorch model detects? Measured, never assumed.

For each artifact, on the same inputs (the bundle's golden images and, with a dataset, its validation
images):

- before top-k: scores [N,Q,C] and boxes [N,Q,4] (normalised cxcywh) of the artifact's raw twin (the
  same export path without post-processing, built at parity time) against PyTorch. Queries are an
  unordered set and near-tied encoder scores may come out of top-k in another order, so queries are
  paired by optimal assignment before taking differences; the share already in the same order is
  reported too.
- after top-k: the post-processed outputs of the shipped artifact itself: max/mean difference of the
  top-100 scores (sorted), the share of PyTorch's top-100 detections that the artifact also has with
  the same label and IoU >= 0.99, and the pixel difference of those matched boxes.
- with a dataset: COCO AP and AP50 of both, and the difference.

A tolerance broken -> exit code 1. Without --weights the bundle's stored golden outputs are the
reference (re-verification on the device, where PyTorch may be absent).
"""

import json
import logging
import math
import tempfile
from pathlib import Path

import numpy as np

from .errors import UserError

log = logging.getLogger("rtdetr_edge")

DEFAULT_TOLERANCES = {
    "fp32": {"raw_score_max": 1e-4, "raw_box_max": 1e-4, "topk_score_max": 1e-4, "top100_match_min": 1.0,
             "ap_drop_max": 0.002},
    "fp16": {"raw_score_max": 1e-2, "raw_box_max": 1e-2, "topk_score_max": 1e-2, "top100_match_min": 0.95,
             "ap_drop_max": 0.01},
}


def _iou_one_to_many(box, boxes):
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)  # noqa
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-12)


def compare_raw(ref_scores, ref_boxes, art_scores, art_boxes) -> dict:
    """Before top-k, queries paired by optimal assignment on the L-inf distance of (scores, box)."""
    from scipy.optimize import linear_sum_assignment

    score_d, box_d, in_order = [], [], []
    for rs, rb, a_s, ab in zip(ref_scores, ref_boxes, art_scores, art_boxes):
        r = np.concatenate([rs, rb], 1).astype(np.float64)
        a = np.concatenate([a_s, ab], 1).astype(np.float64)
        cost = np.abs(r[:, None, :] - a[None, :, :]).max(-1)
        rows, cols = linear_sum_assignment(cost)
        score_d.append(np.abs(rs[rows] - a_s[cols]).ravel())
        box_d.append(np.abs(rb[rows] - ab[cols]).ravel())
        in_order.append(np.mean(rows == cols))
    s, b = np.concatenate(score_d), np.concatenate(box_d)
    return {"raw_score_max": float(s.max()), "raw_score_mean": float(s.mean()), "raw_box_max": float(b.max()),
            "raw_box_mean": float(b.mean()), "queries_in_same_order": float(np.mean(in_order))}


def compare_topk(ref, art, top=100) -> dict:
    """After top-k (post-processed outputs of both): sorted top scores, and detection matching."""
    score_d, matched, box_d = [], [], []
    for rl, rb, rs, al, ab, a_s in zip(ref["labels"], ref["boxes"], ref["scores"], art["labels"], art["boxes"],
                                       art["scores"]):
        score_d.append(np.abs(np.sort(rs)[::-1][:top] - np.sort(a_s)[::-1][:top]))
        for i in range(min(top, len(rs))):
            same = np.nonzero(al == rl[i])[0]
            if len(same) == 0:
                matched.append(False)
                continue
            ious = _iou_one_to_many(rb[i], ab[same])
            j = same[int(np.argmax(ious))]
            ok = ious.max() >= 0.99
            matched.append(bool(ok))
            if ok:
                box_d.append(np.abs(rb[i] - ab[j]))
    s = np.concatenate(score_d)
    bd = np.concatenate(box_d) if box_d else np.array([np.nan])
    return {"topk_score_max": float(s.max()), "topk_score_mean": float(s.mean()),
            "top100_match": float(np.mean(matched)), "matched_box_px_max": float(np.nanmax(bd)),
            "matched_box_px_mean": float(np.nanmean(bd))}


def check(metrics: dict, tol: dict) -> list:
    """Names of broken tolerances."""
    broken = []
    for key, limit in tol.items():
        if limit is None:
            continue
        if key == "top100_match_min":
            v = metrics.get("top100_match")
            if v is not None and v < limit:
                broken.append(f"top100_match {v:.4f} < {limit}")
        elif key == "ap_drop_max":
            v = metrics.get("ap_drop")
            if v is not None and v > limit:
                broken.append(f"AP drop {v:.4f} > {limit}")
        else:
            v = metrics.get(key)
            if v is not None and (v > limit or math.isnan(v)):
                broken.append(f"{key} {v:.3g} > {limit:g}")
    return broken


def _coco_of(runtime, dataset, batch=4, progress=None):
    from .preprocess import preprocess
    from .train.evaluate import coco_eval

    dets = []
    for start in range(0, len(dataset), batch):
        items = [dataset.load(i) for i in range(start, min(start + batch, len(dataset)))]
        images, sizes = preprocess([im for im, _ in items], runtime.imgsz)
        labels, boxes, scores = runtime.infer(images, sizes)
        for (_, t), lab, box, sc in zip(items, labels, boxes, scores):
            order = np.argsort(-sc)[:100]
            for k in order:
                x0, y0, x1, y1 = (float(v) for v in box[k])
                dets.append({"image_id": t["image_id"], "category_id": dataset.category_ids[int(lab[k])],
                             "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(sc[k])})
        if progress:
            progress(len(items))
    return coco_eval(dataset.ann_file, dets, dataset.category_ids, dataset.class_names)


def parity(models, weights=None, data=None, tolerances=None, max_images=None, progress=None) -> dict:
    """Measure every bundle in `models`; returns the report (dict) with `ok` per artifact and overall."""
    from .export import write_artifact
    from .export.bundle import check_hashes, golden_inputs, load_golden
    from .runtime.base import load_runtime, read_manifest

    report = {"weights": str(weights) if weights else None, "data": str(data) if data else None, "artifacts": []}
    torch_cache, ap_cache = {}, {}
    dataset = None
    if data:
        from .data.coco import CocoDetection, resolve_coco_dir

        ann, images = resolve_coco_dir(data, "val")
        dataset = CocoDetection(ann, images)
        if max_images:
            dataset.images = dataset.images[:max_images]
    for bundle in models:
        bundle = Path(bundle)
        if not bundle.is_dir():
            raise UserError(f"{bundle}: not a bundle folder (export one with `rtdetr-edge export`)")
        manifest = read_manifest(bundle)
        precision = manifest.get("precision", "fp32")
        tol = dict(DEFAULT_TOLERANCES.get(precision, DEFAULT_TOLERANCES["fp16"]))
        tol.update(tolerances or {})
        entry = {"bundle": str(bundle), "format": manifest["format"], "precision": precision,
                 "sampling": manifest.get("sampling"), "imgsz": manifest["input"]["imgsz"],
                 "batch": manifest["input"]["batch"], "tolerances": tol}
        damaged = check_hashes(bundle, manifest)
        if damaged:
            raise UserError(f"{bundle}: files differ from their manifest sha256: {', '.join(damaged)}")
        golden = load_golden(bundle)
        x, sizes = golden_inputs(golden)
        runtime = load_runtime(bundle)
        if hasattr(runtime, "effective_precision"):
            entry["runtime_precision"] = runtime.effective_precision
        labels, boxes, scores = runtime.infer(x, sizes)
        art = {"labels": labels, "boxes": boxes, "scores": scores}
        metrics = {}
        if weights:
            key = (tuple(manifest["input"]["imgsz"]), manifest.get("sampling"))
            if key not in torch_cache:
                from .model.checkpoint import load_model

                torch_cache[key] = load_model(weights, imgsz=key[0], sampling=key[1]).deploy()
            model = torch_cache[key]
            from .export.bundle import golden_outputs

            ref = golden_outputs(model, golden["images"], golden["orig_target_sizes"])
            batch = manifest["input"]["batch"]
            with tempfile.TemporaryDirectory() as tmp:
                write_artifact(model, manifest["format"], precision, tmp, tuple(manifest["input"]["imgsz"]),
                               batch if isinstance(batch, int) else 1, dynamic_batch=batch == "dynamic", raw=True)
                raw_rt = load_runtime(Path(tmp) / manifest["artifact"])
                raw_rt.batch = batch
                raw_scores, raw_boxes = raw_rt.infer(x)
            metrics.update(compare_raw(ref["raw_scores"], ref["raw_boxes"], raw_scores, raw_boxes))
        else:
            ref = golden  # the stored PyTorch outputs
            entry["reference"] = "golden outputs stored at export"
        metrics.update(compare_topk(ref, art))
        if dataset is not None:
            if weights and "torch" not in ap_cache.setdefault(tuple(manifest["input"]["imgsz"]), {}):
                from .runtime.pytorch import TorchRuntime

                trt = TorchRuntime(weights, imgsz=tuple(manifest["input"]["imgsz"]))
                ap_cache[tuple(manifest["input"]["imgsz"])]["torch"] = _coco_of(trt, dataset, progress=progress)
            art_ap = _coco_of(runtime, dataset, progress=progress)
            metrics["AP"], metrics["AP50"] = art_ap["AP"], art_ap["AP50"]
            ref_ap = ap_cache.get(tuple(manifest["input"]["imgsz"]), {}).get("torch")
            if ref_ap:
                metrics["torch_AP"], metrics["torch_AP50"] = ref_ap["AP"], ref_ap["AP50"]
                metrics["ap_drop"] = ref_ap["AP"] - art_ap["AP"]
        entry["metrics"] = metrics
        entry["broken"] = check(metrics, tol)
        entry["ok"] = not entry["broken"]
        report["artifacts"].append(entry)
    report["ok"] = all(a["ok"] for a in report["artifacts"])
    return report


COLUMNS = [("raw_score_max", "score max (raw)", "{:.2e}"), ("raw_box_max", "box max (raw)", "{:.2e}"),
           ("queries_in_same_order", "same order", "{:.2f}"), ("topk_score_max", "score max (top-k)", "{:.2e}"),
           ("top100_match", "top-100 match", "{:.3f}"), ("matched_box_px_max", "box px max", "{:.2e}"),
           ("AP", "AP", "{:.4f}"), ("torch_AP", "AP torch", "{:.4f}"), ("ap_drop", "AP drop", "{:+.4f}")]


def _fmt(metrics, key, fmt):
    v = metrics.get(key)
    return "-" if v is None else fmt.format(v)


def _name(a):
    return f"{a['format']} {a['precision']} {a['sampling']} {a['imgsz'][0]}x{a['imgsz'][1]} b{a['batch']}"


def write_report(report, folder) -> dict:
    """parity.json, parity.md and parity.png in `folder`; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "parity.json").write_text(json.dumps(report, indent=2))
    cols = [c for c in COLUMNS if any(c[0] in a["metrics"] for a in report["artifacts"])]
    lines = ["# Parity report", "", f"Reference: {report['weights'] or 'golden outputs stored in each bundle'}"
             + (f"; dataset {report['data']}" if report["data"] else ""), "",
             "| artifact | " + " | ".join(c[1] for c in cols) + " | result |",
             "|---" * (len(cols) + 2) + "|"]
    for a in report["artifacts"]:
        result = "pass" if a["ok"] else "FAIL: " + "; ".join(a["broken"])
        lines.append(f"| {_name(a)} | " + " | ".join(_fmt(a["metrics"], k, f) for k, _, f in cols) + f" | {result} |")
    lines += ["", "Tolerances per artifact are in parity.json (defaults per precision, overridable with --tol)."]
    (folder / "parity.md").write_text("\n".join(lines) + "\n")
    _chart(report, folder / "parity.png")
    return {k: folder / f"parity.{k}" for k in ("json", "md", "png")}


def _chart(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arts = report["artifacts"]
    keys = [("raw_score_max", "raw_score_max"), ("raw_box_max", "raw_box_max"), ("topk_score_max", "topk_score_max")]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.6 * len(arts) + 2.5))
    ax = axes[0]
    y = np.arange(len(arts))
    for i, (key, tkey) in enumerate(keys):
        vals = [max(a["metrics"].get(key, np.nan), 1e-9) for a in arts]
        ax.barh(y + (i - 1) * 0.25, vals, height=0.25, label=key)
    for j, a in enumerate(arts):
        lim = a["tolerances"].get("raw_score_max")
        if lim:
            ax.plot([lim, lim], [j - 0.4, j + 0.4], "k--", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y, [_name(a) + ("" if a["ok"] else "  FAIL") for a in arts])
    ax.set_title("max abs difference vs PyTorch (dashed: tolerance)")
    ax.legend(fontsize=8)
    ax = axes[1]
    match = [a["metrics"].get("top100_match", np.nan) for a in arts]
    ax.barh(y, match, color=["tab:green" if a["ok"] else "tab:red" for a in arts])
    ax.set_xlim(0, 1.05)
    ax.set_yticks(y, [""] * len(arts))
    ax.set_title("top-100 detections matched (same label, IoU >= 0.99)")
    for j, a in enumerate(arts):
        if "AP" in a["metrics"]:
            text = f"AP {a['metrics']['AP']:.3f}"
            if "torch_AP" in a["metrics"]:
                text += f" (torch {a['metrics']['torch_AP']:.3f})"
            ax.text(0.02, j, text, va="center", fontsize=8, color="white")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
