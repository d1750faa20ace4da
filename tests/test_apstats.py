"""The AP gate: per-image matches give COCO's AP exactly (against faster-coco-eval), a bootstrap resample is
the same as evaluating the duplicated images, and the gate fails only a drop that is significantly over its
limit -- a degraded artifact fails, the same export unchanged passes, a tiny set says it cannot tell."""

import json

import numpy as np
import pytest

from rtdetr_edge.apstats import MIN_IMAGES, average_precision, gate, match, paired_bootstrap
from rtdetr_edge.cocoeval import coco_eval


def _scene(n_images=30, seed=0, crowd_every=7):
    """Ground truth (3 categories, some crowd regions) and detections that find most objects, with jitter,
    misses and false positives -- a detector's output in miniature."""
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for i in range(1, n_images + 1):
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 200})
        for _ in range(rng.integers(1, 6)):
            x, y, w, h = rng.uniform(0, 150), rng.uniform(0, 150), rng.uniform(8, 50), rng.uniform(8, 50)
            cat = int(rng.integers(1, 4))
            crowd = int(len(anns) % crowd_every == crowd_every - 1)
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": crowd})
            if rng.random() < 0.85:
                j = rng.normal(0, 2.0, 4)
                dets.append({"image_id": i, "category_id": cat, "bbox": [x + j[0], y + j[1], w + j[2], h + j[3]],
                             "score": float(rng.uniform(0.3, 1.0))})
        for _ in range(rng.integers(0, 3)):
            dets.append({"image_id": i, "category_id": int(rng.integers(1, 4)),
                         "bbox": [float(v) for v in rng.uniform(0, 150, 4)], "score": float(rng.uniform(0, 0.6))})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)]}
    return gt, dets


def _coco_ap(tmp_path, gt, dets, name="gt.json"):
    path = tmp_path / name
    path.write_text(json.dumps(gt))
    return coco_eval(path, dets, [1, 2, 3], ["c1", "c2", "c3"], image_ids=[i["id"] for i in gt["images"]])["AP"]


def test_matches_give_cocos_ap_and_a_resample_is_the_duplicated_set(tmp_path):
    gt, dets = _scene()
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    ids = [i["id"] for i in gt["images"]]
    m = match(path, dets, ids)
    assert any(a["iscrowd"] for a in gt["annotations"])
    assert average_precision(m) == pytest.approx(_coco_ap(tmp_path, gt, dets), abs=1e-9)
    # a bootstrap resample (counts per image) equals COCO on the images copied that many times
    counts = np.random.default_rng(1).multinomial(len(ids), [1 / len(ids)] * len(ids))
    dup_images, dup_anns, dup_dets = [], [], []
    for k, iid in enumerate(ids):
        for copy in range(counts[k]):
            new = 1000 * (copy + 1) + iid
            dup_images.append({**gt["images"][k], "id": new})
            dup_anns += [{**a, "id": len(dup_anns) + 1 + j, "image_id": new}
                         for j, a in enumerate(x for x in gt["annotations"] if x["image_id"] == iid)]
            dup_dets += [{**d, "image_id": new} for d in dets if d["image_id"] == iid]
    dup = {**gt, "images": dup_images, "annotations": dup_anns}
    assert average_precision(m, counts) == pytest.approx(_coco_ap(tmp_path, dup, dup_dets, "dup.json"), abs=2e-3)


def _dense_ap(m, weights):
    """COCOeval.accumulate transcribed over every detection (what apstats computed before it read only the
    true positives): cumulative true and false positives, recall, precision, its envelope, 101 points."""
    from rtdetr_edge.apstats import IOU_THRESHOLDS, RECALL_THRESHOLDS

    values = []
    for c in m.categories:
        npig = float((m.gt_count[c] * weights).sum())
        if npig <= 0:
            continue
        if len(m.scores[c]) == 0:
            values += [0.0] * len(IOU_THRESHOLDS)
            continue
        w = weights[m.image[c]]
        tp = np.cumsum(w * (m.matched[c] & ~m.ignored[c]), axis=1)
        fp = np.cumsum(w * (~m.matched[c] & ~m.ignored[c]), axis=1)
        rc, pr = tp / npig, tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
        for t in range(len(IOU_THRESHOLDS)):
            idx = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
            values.append(float(np.where(idx < pr.shape[1], pr[t, np.minimum(idx, pr.shape[1] - 1)], 0.0).mean()))
    return float(np.mean(values)) if values else 0.0


def test_the_fast_ap_is_cocos_accumulate_to_the_last_bit(tmp_path):
    """The bootstrap's AP reads only the true positives; over every detection, with crowd regions and images
    drawn 0-4 times, it gives the same float."""
    gt, dets = _scene(n_images=120, seed=3, crowd_every=5)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    m = match(path, dets, [i["id"] for i in gt["images"]])
    assert any(m.ignored[c].any() for c in m.categories)
    rng = np.random.default_rng(0)
    for k in range(40):
        w = np.ones(m.n_images) if k == 0 else np.bincount(rng.integers(0, m.n_images, m.n_images),
                                                           minlength=m.n_images).astype(np.float64)
        assert average_precision(m, w) == _dense_ap(m, w), k


def test_the_gate_fails_only_a_significant_drop(tmp_path):
    gt, dets = _scene(n_images=60)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    ids = [i["id"] for i in gt["images"]]
    ref = match(path, dets, ids)
    same = paired_bootstrap(ref, match(path, dets, ids), resamples=300)
    assert same["drop"] == same["lo"] == same["hi"] == 0 and gate(same, 0.003)["status"] == "pass"
    rng = np.random.default_rng(0)
    worse = [{**d, "bbox": [v + rng.normal(0, 3.0) for v in d["bbox"]]} for d in dets]  # boxes off by ~3 px
    stats = paired_bootstrap(ref, match(path, worse, ids), resamples=300)
    assert stats["lo"] > 0.02, stats
    g = gate(stats, 0.01)
    assert g["status"] == "FAIL" and not g["ok"]
    # the same drop against a limit above the whole interval passes; one inside the interval is not significant
    assert gate(stats, stats["hi"] + 0.01)["status"] == "pass"
    assert gate(stats, (stats["lo"] + stats["hi"]) / 2)["ok"]
    # a tiny set never fails or passes on its interval: it says how many images would resolve the limit
    tiny = paired_bootstrap(match(path, dets, ids[:4]), match(path, worse, ids[:4]), resamples=300)
    g = gate(tiny, 0.01)
    assert g["status"] == "not resolvable" and g["ok"] and g["images_to_resolve"] >= MIN_IMAGES


def test_a_degraded_artifact_fails_and_the_same_export_unchanged_passes(shapes_onnx, tmp_path):
    """End to end on the shipped model: decoder box heads perturbed (about 3 AP points lost) fail the AP gate
    with a significant interval; the unperturbed export passes it; 4 images are not enough to tell."""
    import torch

    from rtdetr_edge import load_model, save_checkpoint
    from rtdetr_edge.data.synth import generate
    from rtdetr_edge.export import export
    from rtdetr_edge.parity import parity

    data = generate(tmp_path / "data", 0, 24, 320, seed=11)
    model = load_model("shapes")
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "dec_bbox_head" in name and p.dim() == 2:
                p.add_(torch.randn_like(p) * p.std() * 0.5)
    save_checkpoint(model, tmp_path / "degraded.pt")
    degraded = export(tmp_path / "degraded.pt", "onnx", simplifier="none", raw_twin=False, out=tmp_path / "degraded")
    unchanged = shapes_onnx  # the shipped model's export, shared with the demo tests
    loose = {"raw_score_max": 10, "raw_box_max": 10, "topk_score_max": 10, "top100_match_min": 0,
             "queries_swapped_max": 1}  # the deviations are of course broken: here only AP is judged
    report = parity([degraded, unchanged], "shapes", data, tolerances=loose)
    bad, good = report["artifacts"]
    assert bad["ap_gate"]["status"] == "FAIL" and not bad["ok"], bad["metrics"]["ap_drop_interval"]
    assert any("significantly" in b for b in bad["broken"])
    assert good["ok"] and good["ap_gate"]["status"] == "pass" and good["metrics"]["ap_drop"] == 0
    assert bad["metrics"]["images"] == good["metrics"]["images"] == 24
    # the image count per precision (as the quickstart gates FP32 rows on fewer): fp32 rows here get 4
    tiny = parity([degraded], "shapes", data, tolerances=loose, max_images={"int8": 20, "fp32": 4})["artifacts"][0]
    assert tiny["ok"] and tiny["ap_gate"]["status"] == "not resolvable" and tiny["metrics"]["images"] == 4


def test_the_reference_runs_each_image_once_for_rows_on_different_image_counts(tmp_path, monkeypatch):
    """The quickstart gates FP32 rows on the first 200 images and INT8 rows on all: the PyTorch reference's
    detections are kept per image, so the larger set runs only the images the smaller did not, and each
    set's metrics equal a fresh evaluation of that set."""
    from rtdetr_edge.cocoeval import evaluate_runtime
    from rtdetr_edge.data.synth import generate
    from rtdetr_edge.parity import _References, _datasets
    from rtdetr_edge.runtime.pytorch import TorchRuntime

    data = generate(tmp_path / "data", 0, 10, 320, seed=12)
    sets = _datasets(data, {"fp32": 4})
    refs = _References("shapes")
    seen = []
    infer = TorchRuntime.infer
    monkeypatch.setattr(TorchRuntime, "infer", lambda self, x, s: (seen.append(len(x)), infer(self, x, s))[1])
    small = refs.coco((320, 320), "grid_sample", sets["fp32"], None)
    full = refs.coco((320, 320), "grid_sample", sets[None], None)
    assert sum(seen) == 10 and len(sets["fp32"]) == 4 and len(sets[None]) == 10, seen
    fresh = TorchRuntime(None, model=refs.model((320, 320), "grid_sample"))
    for got, dataset in ((small, sets["fp32"]), (full, sets[None])):
        want = evaluate_runtime(fresh, dataset, matches=True)
        assert got["AP"] == want["AP"] and got["matches"].n_images == len(dataset)
