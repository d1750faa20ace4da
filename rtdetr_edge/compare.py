"""Comparing a model's outputs with a reference's, and the tolerances a comparison must meet.

Neutral ground (numpy + scipy, no PyTorch): export uses it to check that a simplified graph still
gives the same outputs, parity and verify use it to measure artifacts against PyTorch or golden data.
"""

import math

import numpy as np

from .errors import UserError
from .vocab import OUTPUT_NAMES

# tolerance name -> (metric it limits, "max" = the metric may not exceed it, "min" = may not fall below)
TOLERANCE_KEYS = {
    "raw_score_max": ("raw_score_max", "max"),
    "raw_box_max": ("raw_box_max", "max"),
    "topk_score_max": ("topk_score_max", "max"),
    "top100_match_min": ("top100_match", "min"),
    "ap_drop_max": ("ap_drop", "max"),
    "queries_swapped_max": ("queries_swapped", "max"),
}
# A pair of queries this far apart (L-inf over scores and box) is not the same query: the encoder's top-k
# picked another one at the boundary of its 300 (two encoder scores tied within the runtime's rounding).
SWAP_DISTANCE = 1e-2
# INT8 moves every query by its rounding (measured up to ~5e-2 on a trained model): pairs are another
# query only beyond this
SWAP_DISTANCE_BY_PRECISION = {"int8": 0.2}
# With a swapped query the decoder's self-attention sees another query, which moves every other query a
# little (measured: 5e-4 with 7 of 300 swapped on a trained model, fp32): score and box differences are then
# held to this many times their tolerance; the report shows the swapped share beside them.
SWAP_FACTOR = 10
SWAP_WIDENED = ("raw_score_max", "raw_box_max", "topk_score_max")
DEFAULT_TOLERANCES = {
    "fp32": {"raw_score_max": 1e-4, "raw_box_max": 1e-4, "topk_score_max": 1e-4, "top100_match_min": 1.0,
             "ap_drop_max": 0.002, "queries_swapped_max": 0.05},
    "fp16": {"raw_score_max": 1e-2, "raw_box_max": 1e-2, "topk_score_max": 1e-2, "top100_match_min": 0.95,
             "ap_drop_max": 0.01, "queries_swapped_max": 0.1},
    # INT8 against the FP32 model (or the fake-quant golden outputs): per-query deviations are those of 8-bit
    # rounding and say little alone; what must hold is the accuracy (0.3 AP points) and the detections kept
    "int8": {"raw_score_max": 0.1, "raw_box_max": 0.1, "topk_score_max": 0.25, "top100_match_min": 0.1,
             "ap_drop_max": 0.003, "queries_swapped_max": 0.2},
}


def tolerances_for(precision: str, overrides=None) -> dict:
    """The default tolerances of a precision, with validated overrides. An unknown precision is an error
    (never a silent fallback to another precision's limits)."""
    if precision not in DEFAULT_TOLERANCES:
        raise UserError(f"no parity tolerances for precision {precision!r} (known: "
                        f"{', '.join(DEFAULT_TOLERANCES)}); give every one with --tol")
    tol = dict(DEFAULT_TOLERANCES[precision])
    tol.update(validate_tolerances(overrides or {}))
    return tol


def validate_tolerances(tol: dict, source="--tol") -> dict:
    out = {}
    for key, value in tol.items():
        if key not in TOLERANCE_KEYS:
            raise UserError(f"{source}: unknown tolerance {key!r} (known: {', '.join(TOLERANCE_KEYS)})")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise UserError(f"{source} {key}: {value!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise UserError(f"{source} {key}: must be a finite number >= 0, got {value}")
        if key == "top100_match_min" and value > 1:
            raise UserError(f"{source} {key}: a share between 0 and 1, got {value}")
        out[key] = value
    return out


def parse_tolerances(items) -> dict:
    """KEY=VALUE strings (the CLI's --tol) -> validated {key: value}."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not value.strip():
            raise UserError(f"--tol expects KEY=VALUE (e.g. raw_score_max=1e-3), got {item!r}")
        out[key.strip()] = value.strip()
    return validate_tolerances(out)


def evaluate(metrics: dict, tol: dict) -> list:
    """Each tolerance against its metric: [{tolerance, metric, value, limit (the one applied), kind, ok,
    text}], in the order of `tol`. A NaN metric breaks its tolerance; a metric not measured is left out."""
    results = []
    for key, limit in tol.items():
        metric, kind = TOLERANCE_KEYS[key]
        v = metrics.get(metric)
        if limit is None or v is None:
            continue
        if key in SWAP_WIDENED and metrics.get("queries_swapped"):
            limit = limit * SWAP_FACTOR  # see SWAP_FACTOR
        interval = metrics.get(f"{metric}_interval")
        extra = {}
        if math.isnan(v):
            why = f" (the outputs are another model's: {metrics['shape_mismatch']})" \
                if "shape_mismatch" in metrics else ""
            ok, text = False, f"{metric} is NaN{why}"
        elif interval is not None and kind == "max":
            # measured on a sample of images: broken only when the drop is significantly over the limit
            from .apstats import gate

            extra = gate(interval, limit)
            ok = extra["ok"]
            text = (f"{metric} {v:.4g} > {limit:g}, significantly ({interval['level']:.0%} interval "
                    f"{interval['lo']:+.4f}..{interval['hi']:+.4f} over {interval['n_images']} images)")
        elif kind == "max":
            ok, text = v <= limit, f"{metric} {v:.4g} > {limit:g}"
        else:
            ok, text = v >= limit, f"{metric} {v:.4f} < {limit:g}"
        results.append({"tolerance": key, "metric": metric, "value": v, "limit": limit, "kind": kind, "ok": bool(ok),
                        "text": None if ok else text, **{k: extra[k] for k in ("status", "images_to_resolve")
                                                         if k in extra}})
    return results


def check(metrics: dict, tol: dict) -> list:
    """Descriptions of the broken tolerances (evaluate() has the structured results)."""
    return [r["text"] for r in evaluate(metrics, tol) if not r["ok"]]


def iou_one_to_many(box, boxes):
    """IoU of one xyxy box with each of [K,4] boxes."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)

    def area(b):
        return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-12)


def compare_raw(ref_scores, ref_boxes, art_scores, art_boxes, precision=None) -> dict:
    """Before top-k, queries paired by optimal assignment on the L-inf distance of (scores, box): queries
    are an unordered set, and near-tied encoder scores may leave top-k in another order. Pairs further
    apart than SWAP_DISTANCE are different queries (a tie at the boundary of the encoder's top-k swapped
    one in): they are counted as `queries_swapped` (a share) and left out of the differences. INT8
    (`precision`) uses a wider distance (SWAP_DISTANCE_BY_PRECISION): its rounding moves every query."""
    from scipy.optimize import linear_sum_assignment

    nan = {"raw_score_max": float("nan"), "raw_box_max": float("nan"), "raw_score_mean": float("nan"),
           "raw_box_mean": float("nan"), "queries_in_same_order": float("nan"), "queries_swapped": float("nan")}
    shapes = [np.shape(a) for a in (ref_scores, art_scores, ref_boxes, art_boxes)]
    if shapes[0] != shapes[1] or shapes[2] != shapes[3]:  # another model (other classes or queries): no pairing
        return {**nan, "shape_mismatch": f"scores {shapes[0]} vs {shapes[1]}, boxes {shapes[2]} vs {shapes[3]}"}
    score_d, box_d, in_order, swapped = [], [], [], []
    for rs, rb, a_s, ab in zip(ref_scores, ref_boxes, art_scores, art_boxes):
        r = np.concatenate([rs, rb], 1).astype(np.float64)
        a = np.concatenate([a_s, ab], 1).astype(np.float64)
        cost = np.abs(r[:, None, :] - a[None, :, :]).max(-1)
        if not np.isfinite(cost).all():
            return nan
        rows, cols = linear_sum_assignment(cost)
        same = cost[rows, cols] <= SWAP_DISTANCE_BY_PRECISION.get(precision, SWAP_DISTANCE)
        swapped.append(1.0 - np.mean(same))
        rows, cols = rows[same], cols[same]
        score_d.append(np.abs(rs[rows] - a_s[cols]).ravel())
        box_d.append(np.abs(rb[rows] - ab[cols]).ravel())
        in_order.append(np.mean(rows == cols))
    s, b = np.concatenate(score_d), np.concatenate(box_d)
    return {"raw_score_max": float(s.max()), "raw_score_mean": float(s.mean()), "raw_box_max": float(b.max()),
            "raw_box_mean": float(b.mean()), "queries_in_same_order": float(np.mean(in_order)),
            "queries_swapped": float(np.mean(swapped))}


# How a detection is matched after top-k, per precision: FP32/FP16 must reproduce every one of the top 100 at
# IoU 0.99. INT8 rounding moves boxes by more than that, and among detections a user never sees (scores near
# the floor, near-tied) it reorders which queries make the top 100: an INT8 artifact must reproduce the
# detections that count -- reference score >= 0.3 -- at IoU 0.9.
MATCH = {"fp32": {"iou": 0.99, "min_score": 0.0}, "fp16": {"iou": 0.99, "min_score": 0.0},
         "int8": {"iou": 0.9, "min_score": 0.3}}


def compare_topk(ref, art, top=100, precision=None) -> dict:
    """After top-k (post-processed outputs of both, dicts of labels/boxes/scores): sorted top scores, and
    the share of the reference's top detections the artifact has with the same label at the precision's IoU
    (MATCH; IoU >= 0.99 by default). With no reference detection to match (INT8: none scoring >= 0.3),
    `top100_match` is None: not measured, so no tolerance is judged on it."""
    rule = MATCH.get(precision, MATCH["fp32"])
    score_d, matched, box_d = [], [], []
    for rl, rb, rs, al, ab, a_s in zip(ref["labels"], ref["boxes"], ref["scores"], art["labels"], art["boxes"],
                                       art["scores"]):
        score_d.append(np.abs(np.sort(rs)[::-1][:top] - np.sort(a_s)[::-1][:top]))
        for i in range(min(top, len(rs))):
            if rs[i] < rule["min_score"]:
                continue
            same = np.nonzero(al == rl[i])[0]
            if len(same) == 0:
                matched.append(False)
                continue
            ious = iou_one_to_many(rb[i], ab[same])
            j = same[int(np.argmax(ious))]
            ok = ious.max() >= rule["iou"]
            matched.append(bool(ok))
            if ok:
                box_d.append(np.abs(rb[i] - ab[j]))
    s = np.concatenate(score_d)
    bd = np.concatenate(box_d) if box_d else np.array([np.nan])
    return {"topk_score_max": float(np.max(s)), "topk_score_mean": float(np.mean(s)),
            "top100_match": float(np.mean(matched)) if matched else None, "top100_matched_of": len(matched),
            "match_rule": rule, "matched_box_px_max": float(np.nanmax(bd)) if box_d else None,
            "matched_box_px_mean": float(np.nanmean(bd)) if box_d else None}


def same_outputs(before, after, atol=1e-6) -> bool:
    """Two runs of a graph (tuples of outputs) agree to `atol`: raw twins per query, shipped graphs after
    top-k up to the order of near-tied detections."""
    if any(a.shape != b.shape for a, b in zip(before, after)):
        return False
    if len(before) == 2:  # raw twin: scores, boxes
        d = compare_raw(*before, *after)
        return d["raw_score_max"] <= atol and d["raw_box_max"] <= atol
    keys = OUTPUT_NAMES
    d = compare_topk(dict(zip(keys, before)), dict(zip(keys, after)))
    return d["topk_score_max"] <= atol and d["top100_match"] == 1.0
