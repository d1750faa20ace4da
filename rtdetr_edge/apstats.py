"""How sure is an AP difference? A paired bootstrap over images, from per-image matches.

An accuracy gate ("the artifact may lose at most 0.3 AP points") means something only when the validation
set can resolve 0.3 points. Two models evaluated on the same images differ by an amount that itself varies
with which images were drawn; resampling the images (the same resample for both models: paired) shows by
how much. COCO AP is not a sum over images, so each resample is scored again -- but from matches computed
once: each detection is matched to the ground truth exactly as COCOeval's `evaluateImg` does (per image
and category, greedy by score, at the ten IoU thresholds 0.50:0.95, crowd regions ignored, 100 detections),
and a resample only re-weights images (an image drawn twice counts twice) before COCOeval's
`accumulate` (101-point interpolated precision). On the full set this gives COCO's AP to rounding
(tests/test_apstats.py compares it with faster-coco-eval).

Numpy only: the same statistics run on a device.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
MAX_DETS = 100
# below this many images a percentile bootstrap has too few distinct resamples to be trusted (with 4 images
# there are 35): the gate then neither passes nor fails on the interval, it says the set cannot resolve it
MIN_IMAGES = 20


@dataclass
class Matches:
    """Per category: every detection's score, image index, matched flag per IoU threshold and ignore flag;
    and per image the number of ground-truth objects that count (not crowd)."""
    categories: list  # category ids with ground truth in the set
    scores: dict  # cat -> [D] float
    image: dict  # cat -> [D] int (index into the image list)
    matched: dict  # cat -> [T, D] bool
    ignored: dict  # cat -> [T, D] bool (matched to a crowd region)
    gt_count: dict  # cat -> [N] int: objects per image that count
    n_images: int
    hits: dict = None  # cat -> (true positives' positions, ignored ones') per threshold: filled on first use


def _iou(dt, gt, crowd):
    """IoU of xywh boxes [D,4] x [G,4]; against a crowd region, the share of the detection inside it (COCO)."""
    dx0, dy0 = dt[:, 0:1], dt[:, 1:2]
    dx1, dy1 = dx0 + dt[:, 2:3], dy0 + dt[:, 3:4]
    gx0, gy0 = gt[:, 0], gt[:, 1]
    gx1, gy1 = gx0 + gt[:, 2], gy0 + gt[:, 3]
    inter = np.clip(np.minimum(dx1, gx1) - np.maximum(dx0, gx0), 0, None) * \
        np.clip(np.minimum(dy1, gy1) - np.maximum(dy0, gy0), 0, None)
    da = (dt[:, 2] * dt[:, 3])[:, None]
    ga = (gt[:, 2] * gt[:, 3])[None, :]
    union = np.where(crowd[None, :], da, da + ga - inter)
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _match_one(dt_boxes, dt_scores, gt_boxes, gt_crowd):
    """COCOeval.evaluateImg for one image and category (area 'all', 100 detections): returns (scores sorted,
    matched [T,D], ignored [T,D], objects that count)."""
    order = np.argsort(-dt_scores, kind="mergesort")[:MAX_DETS]
    dt_boxes, dt_scores = dt_boxes[order], dt_scores[order]
    g_order = np.argsort(gt_crowd, kind="mergesort")  # objects that count first, crowd regions last
    gt_boxes, gt_crowd = gt_boxes[g_order], gt_crowd[g_order]
    T, D, G = len(IOU_THRESHOLDS), len(dt_scores), len(gt_boxes)
    matched = np.zeros((T, D), bool)
    ignored = np.zeros((T, D), bool)
    if D and G:
        ious = _iou(dt_boxes, gt_boxes, gt_crowd)
        for t, thr in enumerate(IOU_THRESHOLDS):
            taken = np.zeros(G, bool)
            for d in range(D):
                best, m = min(thr, 1 - 1e-10), -1
                for g in range(G):
                    if taken[g] and not gt_crowd[g]:
                        continue
                    if m > -1 and not gt_crowd[m] and gt_crowd[g]:
                        break  # a real object already matched: crowd regions come after
                    if ious[d, g] < best:
                        continue
                    best, m = ious[d, g], g
                if m == -1:
                    continue
                matched[t, d] = True
                ignored[t, d] = bool(gt_crowd[m])
                taken[m] = True
    return dt_scores, matched, ignored, int((~gt_crowd).sum())


def match(ann_file, detections, image_ids) -> Matches:
    """Per-image matches of COCO-format `detections` (results entries) against `ann_file`'s ground truth, over
    `image_ids` (the images that were run)."""
    gt = json.loads(Path(ann_file).read_text())
    image_ids = list(image_ids)
    index = {iid: k for k, iid in enumerate(image_ids)}
    cats = sorted(c["id"] for c in gt["categories"])
    gts = {}
    for a in gt["annotations"]:
        if a["image_id"] in index:
            gts.setdefault((a["image_id"], a["category_id"]), []).append(
                (a["bbox"], bool(a.get("iscrowd", 0) or a.get("ignore", 0))))
    dts = {}
    for d in detections:
        if d["image_id"] in index:
            dts.setdefault((d["image_id"], d["category_id"]), []).append((d["bbox"], d["score"]))
    out = Matches([], {}, {}, {}, {}, {}, len(image_ids))
    for c in cats:
        scores, images, matched, ignored = [], [], [], []
        counts = np.zeros(len(image_ids), np.int64)
        for iid, k in index.items():
            g = gts.get((iid, c), [])
            d = dts.get((iid, c), [])
            gb = np.array([b for b, _ in g], np.float64).reshape(-1, 4)
            gc = np.array([cr for _, cr in g], bool)
            db = np.array([b for b, _ in d], np.float64).reshape(-1, 4)
            ds = np.array([s for _, s in d], np.float64)
            s, m, ig, n = _match_one(db, ds, gb, gc)
            counts[k] = n
            scores.append(s)
            images.append(np.full(len(s), k))
            matched.append(m)
            ignored.append(ig)
        if not counts.any():
            continue  # COCO leaves a category without objects out of the mean
        out.categories.append(c)
        scores = np.concatenate(scores)
        order = np.argsort(-scores, kind="mergesort")  # accumulate's order, fixed once for every resample
        out.scores[c] = scores[order]
        out.image[c] = np.concatenate(images).astype(np.int64)[order]
        out.matched[c] = np.concatenate(matched, axis=1)[:, order]
        out.ignored[c] = np.concatenate(ignored, axis=1)[:, order]
        out.gt_count[c] = counts
    return out


def average_precision(m: Matches, weights=None) -> float:
    """COCO AP (0.50:0.95, area all, 100 detections) with images weighted (a bootstrap resample: how often
    each image was drawn; None: each once). COCOeval.accumulate, with counts instead of copies.

    The counts are integers, so every cumulative sum below is exact and the result is COCOeval's to the last
    bit, computed at the true positives only: recall changes only there, so each of the 101 recall points
    falls on one; and precision only falls between two of them (more detections, no more hits), so the
    precision envelope (the running maximum from the right) is their running maximum. At 2,000 images that
    is a few thousand values per category and threshold instead of every detection."""
    w_img = np.ones(m.n_images) if weights is None else np.asarray(weights, np.float64)
    eps = np.finfo(np.float64).eps
    values = []
    for c in m.categories:
        npig = float((m.gt_count[c] * w_img).sum())
        if npig <= 0:
            continue  # not in this resample: left out, as COCO leaves out a category without objects
        # detections are in score order already; an image drawn k times adds k true/false positives (an image
        # not drawn adds none: its detections repeat the cumulative sums, which moves no interpolated point)
        w = w_img[m.image[c]]
        counted = np.cumsum(w)  # detections so far; less the ignored ones at each threshold, below
        hits, ignored = _hits(m, c)
        for t in range(len(IOU_THRESHOLDS)):
            at = hits[t]  # the true positives' positions
            if len(at) == 0:
                values.append(0.0)
                continue
            tp = np.cumsum(w[at])
            n = counted[at]
            if len(ignored[t]):  # detections matched to a crowd region count as neither
                n = n - np.concatenate([[0.0], np.cumsum(w[ignored[t]])])[np.searchsorted(ignored[t], at)]
            rc = tp / npig
            envelope = np.maximum.accumulate((tp / np.maximum(n, eps))[::-1])[::-1]
            idx = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
            q = np.where(idx < len(at), envelope[np.minimum(idx, len(at) - 1)], 0.0)
            values.append(float(q.mean()))
    return float(np.mean(values)) if values else 0.0


def _hits(m: Matches, c):
    """Per IoU threshold, the positions of category c's true positives and of its ignored detections."""
    if m.hits is None:
        m.hits = {}
    if c not in m.hits:
        good = m.matched[c] & ~m.ignored[c]
        m.hits[c] = ([np.flatnonzero(r) for r in good], [np.flatnonzero(r) for r in m.ignored[c]])
    return m.hits[c]


def paired_bootstrap(ref: Matches, art: Matches, resamples=1000, seed=0, level=0.95) -> dict:
    """The AP drop (reference AP - artifact AP) on the full set, and its paired bootstrap over images: the
    same images drawn for both models in each resample. Returns drop, interval (lo, hi), sd, n_images."""
    if ref.n_images != art.n_images:
        raise ValueError("paired bootstrap: both need the same images")
    n = ref.n_images
    rng = np.random.default_rng(seed)
    drops = np.empty(resamples)
    for b in range(resamples):
        counts = np.bincount(rng.integers(0, n, n), minlength=n)
        drops[b] = average_precision(ref, counts) - average_precision(art, counts)
    lo, hi = np.quantile(drops, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"drop": average_precision(ref) - average_precision(art), "lo": float(lo), "hi": float(hi),
            "sd": float(drops.std(ddof=1)), "n_images": n, "resamples": resamples, "level": level, "seed": seed}


def gate(stats: dict, limit: float) -> dict:
    """What the interval supports about `drop <= limit`:

    - "pass": the whole interval is within the limit;
    - "FAIL": the whole interval is over it (the drop is significantly over the limit: the only failure);
    - "not resolvable": the interval is wider than the limit, so this set cannot tell (says how many images
      would: the interval narrows as 1/sqrt(images));
    - "within noise": the interval straddles the limit but is narrower than it (not significantly over).

    Fewer than MIN_IMAGES images are always "not resolvable": their interval cannot be trusted either way.
    """
    lo, hi, n = stats["lo"], stats["hi"], stats["n_images"]
    width = hi - lo
    needed = max(int(np.ceil(n * (width / limit) ** 2)) if limit > 0 and width > 0 else n, MIN_IMAGES)
    if n < MIN_IMAGES:
        status = "not resolvable"
    elif lo > limit:
        status = "FAIL"
    elif hi <= limit:
        status = "pass"
    elif width > limit:
        status = "not resolvable"
    else:
        status = "within noise"
    return {"status": status, "ok": status != "FAIL", "limit": limit, "width": float(width),
            "images_to_resolve": needed if status == "not resolvable" else None}
