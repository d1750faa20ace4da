"""Parity: does an exported artifact still detect what the PyTorch model detects? Measured, never assumed.

For each artifact, on the same inputs (the bundle's golden images and, with a dataset, its validation
images):

- before top-k: scores [N,Q,C] and boxes [N,Q,4] (normalised cxcywh) of the artifact's raw twin (the
  same export path without post-processing, written into the bundle at export) against PyTorch. Queries are an
  unordered set and near-tied encoder scores may come out of top-k in another order, so queries are
  paired by optimal assignment before taking differences; the share already in the same order is
  reported too.
- after top-k: the post-processed outputs of the shipped artifact itself: max/mean difference of the
  top-100 scores (sorted), the share of PyTorch's top-100 detections that the artifact also has with
  the same label and IoU >= 0.99, and the pixel difference of those matched boxes.
- with a dataset: COCO AP and AP50 of both, and the difference with its 95% interval from a paired
  bootstrap over the images (apstats). The AP tolerance is broken only when the whole interval is over it;
  an interval wider than the tolerance is reported as "not resolvable at this set size", with the number of
  images that would resolve it. `max_images` may differ per precision (the quickstart gates FP32 rows, whose
  intervals are hundreds of times narrower than their limit, on fewer images than INT8 rows); each row
  reports the images it was measured on.
- INT8: outputs are compared with the fake-quant PyTorch model the artifact was exported from (stored as its
  golden outputs: a QAT checkpoint is another model than the FP32 one); AP is compared with `--weights`'
  (give the FP32 checkpoint: the AP drop is then what INT8 costs against FP32).

A tolerance broken -> exit code 1. Without --weights the bundle's stored golden outputs are the
reference (re-verification on the device, where PyTorch may be absent).
"""

from pathlib import Path

import numpy as np

from .compare import compare_raw, compare_topk, evaluate, validate_tolerances
from .errors import UserError

LATENCY_RUNS = 10
BOOTSTRAP_RESAMPLES = 1000  # seeded: the same report for the same outputs


class _References:
    """PyTorch references for one checkpoint, built once per (input size, sampling) and shared by all
    bundles: the model for golden inputs, and its COCO metrics on the dataset. Its detections are kept per
    image, so rows measured on different numbers of images (the quickstart's FP32 rows on the first 200)
    run the model once per image."""

    def __init__(self, weights):
        self.weights, self.models, self.ap, self.dets = weights, {}, {}, {}

    def model(self, imgsz, sampling):
        key = (tuple(imgsz), sampling)
        if key not in self.models:
            from .model.checkpoint import load_model

            self.models[key] = load_model(self.weights, imgsz=key[0], sampling=key[1]).deploy()
        return self.models[key]

    def coco(self, imgsz, sampling, dataset, progress):
        model_key = (tuple(imgsz), sampling)
        key = (*model_key, tuple(im["id"] for im in dataset.images))
        if key not in self.ap:
            from .cocoeval import predict, score
            from .runtime.pytorch import TorchRuntime

            dets = self.dets.setdefault(model_key, {})
            missing = [i for i, im in enumerate(dataset.images) if im["id"] not in dets]
            if missing:
                runtime = TorchRuntime(None, model=self.model(imgsz, sampling))
                dets.update(predict(runtime, dataset, progress=progress, indices=missing))
            self.ap[key] = score(dataset, dets, matches=True)
        return self.ap[key]


def _open(bundle, tolerances):
    """Verify the bundle (hashes, manifest digest) and start its report entry."""
    from .bundle import open_bundle, planned

    bundle = Path(bundle)
    manifest = open_bundle(bundle)
    precision, tol = planned(manifest, "artifact")  # the export plan's tolerances, then --tol
    entry = {"bundle": str(bundle), "format": manifest["format"], "precision": precision,
             "sampling": manifest.get("sampling"), "imgsz": manifest["input"]["imgsz"],
             "batch": manifest["input"]["batch"], "tolerances": {**tol, **validate_tolerances(tolerances or {})}}
    q = manifest.get("quantization")
    if q:  # which INT8 form was measured, and how its ranges came about
        entry["int8"] = {"form": q.get("form"), "source": q.get("source"), "policy": q.get("policy", {}).get("name"),
                         "layers": len(q.get("layers", [])), "float": q.get("float", "f32")}
    return manifest, entry


def _reference_outputs(refs, manifest, golden):
    """Post-processed and raw reference outputs on the golden inputs: PyTorch's now, or those stored."""
    if refs is None:
        return golden
    from .bundle import golden_inputs
    from .runtime.pytorch import torch_outputs

    model = refs.model(manifest["input"]["imgsz"], manifest.get("sampling"))
    x, sizes = golden_inputs(golden)
    labels, boxes, scores = torch_outputs(model, x, sizes)
    raw_scores, raw_boxes = torch_outputs(model, x)
    return {"labels": labels, "boxes": boxes, "scores": scores, "raw_scores": raw_scores, "raw_boxes": raw_boxes}


def _raw_metrics(bundle, manifest, ref, x) -> dict:
    """Before top-k: the bundle's raw twin (written at export, same converter and precision) on the
    golden inputs against the reference."""
    from .bundle import artifact
    from .runtime.base import load_runtime

    if artifact(manifest, "raw") is None:
        return {}
    raw_scores, raw_boxes = load_runtime(bundle, kind="raw").infer(x)
    return compare_raw(ref["raw_scores"], ref["raw_boxes"], raw_scores, raw_boxes, manifest.get("precision"))


def _latency_ms(runtime, x, sizes, runs=LATENCY_RUNS) -> float:
    """Median wall time of one image through the shipped artifact (after 2 warm-up runs). For ratios
    measured side by side, interleaved, with CPU features: `rtdetr-edge benchmark`."""
    import time

    for _ in range(2):
        runtime.infer(x, sizes)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runtime.infer(x, sizes)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def _datasets(data, max_images) -> dict:
    """The validation images per precision: {precision or None (any other): dataset}. `max_images` is one count
    for every row or {precision: count} (a precision not named gets every image)."""
    import copy

    from .data.coco import CocoDetection, resolve_coco_dir

    counts = max_images if isinstance(max_images, dict) else {None: max_images}
    for n in counts.values():
        if n is not None and n < 1:
            raise UserError(f"--max-images must be >= 1, got {n}")
    ann, images = resolve_coco_dir(data, "val")
    full = CocoDetection(ann, images)
    out = {}
    for precision, n in {None: None, **counts}.items():
        out[precision] = copy.copy(full)
        out[precision].images = full.images[:n]
    return out


def parity(models, weights=None, data=None, tolerances=None, max_images=None, progress=None) -> dict:
    """Measure every bundle in `models`; returns the report (dict) with `ok` per artifact and overall.
    Without `weights` the bundles' stored golden outputs are the reference and PyTorch is never imported.
    `max_images`: the first N validation images, or {precision: N} (e.g. {"fp32": 200})."""
    from .bundle import golden_inputs, load_golden
    from .runtime.base import load_runtime

    report = {"weights": str(weights) if weights else None, "data": str(data) if data else None, "artifacts": []}
    refs = _References(weights) if weights else None
    datasets = _datasets(data, max_images) if data else None
    opened = [(Path(b), *_open(b, tolerances)) for b in models]  # every bundle checked before any work
    for bundle, manifest, entry in opened:
        precision = entry["precision"]
        golden = load_golden(bundle)
        x, sizes = golden_inputs(golden)
        runtime = load_runtime(bundle)
        entry["runtime_precision"] = runtime.effective_precision
        labels, boxes, scores = runtime.infer(x, sizes)
        if manifest.get("precision") == "int8" and "raw_scores" in golden:
            # an INT8 artifact's outputs are compared with the fake-quant PyTorch model it was exported from
            # (its golden outputs): a QAT model is another model than the FP32 one. AP is against --weights.
            ref = golden
            entry["reference"] = "the fake-quant PyTorch model it was exported from (golden outputs); AP " \
                                 "against " + (str(weights) if weights else "-")
        else:
            ref = _reference_outputs(refs, manifest, golden)
        if refs is None:
            entry["reference"] = "golden outputs stored at export"
        metrics = _raw_metrics(bundle, manifest, ref, x)
        metrics.update(compare_topk(ref, {"labels": labels, "boxes": boxes, "scores": scores}, precision=precision))
        metrics["latency_ms"] = _latency_ms(runtime, x[:1], sizes[:1])
        if datasets is not None:
            from .cocoeval import evaluate_runtime

            dataset = datasets.get(precision, datasets[None])
            metrics["images"] = len(dataset)
            art_ap = evaluate_runtime(runtime, dataset, progress=progress, matches=True)
            metrics["AP"], metrics["AP50"] = art_ap["AP"], art_ap["AP50"]
            if refs is not None:
                from .apstats import paired_bootstrap

                ref_ap = refs.coco(manifest["input"]["imgsz"], manifest.get("sampling"), dataset, progress)
                metrics["torch_AP"], metrics["torch_AP50"] = ref_ap["AP"], ref_ap["AP50"]
                metrics["ap_drop"] = ref_ap["AP"] - art_ap["AP"]
                # the same images resampled for both: how far the drop itself moves with the images drawn
                metrics["ap_drop_interval"] = paired_bootstrap(ref_ap["matches"], art_ap["matches"],
                                                               resamples=BOOTSTRAP_RESAMPLES)
        entry["metrics"] = metrics
        entry["checks"] = evaluate(metrics, entry["tolerances"])
        entry["broken"] = [c["text"] for c in entry["checks"] if not c["ok"]]
        entry["ok"] = not entry["broken"]
        ap = next((c for c in entry["checks"] if c["metric"] == "ap_drop"), None)
        if ap is not None and "status" in ap:
            entry["ap_gate"] = {k: ap[k] for k in ("status", "limit", "images_to_resolve")}
        report["artifacts"].append(entry)
    report["ok"] = all(a["ok"] for a in report["artifacts"])
    return report


COLUMNS = [("raw_score_max", "score max (raw)", "{:.2e}"), ("raw_box_max", "box max (raw)", "{:.2e}"),
           ("queries_in_same_order", "same order", "{:.2f}"), ("queries_swapped", "swapped", "{:.3f}"), ("topk_score_max", "score max (top-k)", "{:.2e}"),
           ("top100_match", "top-100 match", "{:.3f}"), ("matched_box_px_max", "box px max", "{:.2e}"),
           ("images", "images", "{:d}"), ("AP", "AP", "{:.4f}"), ("AP50", "AP50", "{:.4f}"), ("torch_AP", "AP torch", "{:.4f}"),
           ("ap_drop", "AP drop", "{:+.4f}"), ("latency_ms", "latency ms", "{:.1f}")]


def fmt_metric(metrics, key, fmt):
    v = metrics.get(key)
    if v is None:
        return "-"
    interval = metrics.get(f"{key}_interval")
    if interval is not None:  # the AP drop with its interval: "+0.0043 [-0.0011, +0.0102]"
        return f"{fmt.format(v)} [{interval['lo']:+.4f}, {interval['hi']:+.4f}]"
    return fmt.format(v)


def gate_text(a) -> str:
    """The AP gate's verdict for a table cell: what the interval supports."""
    g = a.get("ap_gate")
    if not g:
        return ""
    if g["status"] == "not resolvable":
        return (f"AP drop not resolvable at this set size: its interval is wider than the {g['limit'] * 100:.1f}-point "
                f"limit (about {g['images_to_resolve']} images would resolve it)")
    if g["status"] == "within noise":
        return f"AP drop not significantly over the {g['limit'] * 100:.1f}-point limit"
    return f"AP drop {g['status']} against the {g['limit'] * 100:.1f}-point limit"


def artifact_name(a):
    precision = a["precision"]
    if a.get("int8"):  # e.g. "int8 s8s8 QAT", "int8 s8s8 QAT bf16-floats" (--int8-float bf16)
        precision += f" {a['int8']['form']} {str(a['int8']['source']).upper()}"
        if a["int8"].get("float", "f32") != "f32":
            precision += f" {a['int8']['float']}-floats"
    return f"{a['format']} {precision} {a['sampling']} {a['imgsz'][0]}x{a['imgsz'][1]} b{a['batch']}"


def write_report(report, folder) -> dict:
    """parity.json, parity.md and parity.png in `folder`; returns their paths."""
    from .fsutil import write_report_files

    cols = [c for c in COLUMNS if any(c[0] in a["metrics"] for a in report["artifacts"])]
    lines = ["# Parity report", "", f"Reference: {report['weights'] or 'golden outputs stored in each bundle'}"
             + (f"; dataset {report['data']}" if report["data"] else ""), "",
             "| artifact | " + " | ".join(c[1] for c in cols) + " | result |",
             "|---" * (len(cols) + 2) + "|"]
    for a in report["artifacts"]:
        result = ("pass" if a["ok"] else "FAIL: " + "; ".join(a["broken"])) + \
            (f" ({gate_text(a)})" if gate_text(a) and a["ok"] else "")
        cells = " | ".join(fmt_metric(a["metrics"], k, f) for k, _, f in cols)
        lines.append(f"| {artifact_name(a)} | {cells} | {result} |")
    lines += ["", "Tolerances per artifact are in parity.json (the export plan's, recorded in each manifest; "
              "overridable with --tol).",
              "AP drop: reference AP - artifact AP, with its 95% interval from a paired bootstrap over the images "
              f"({BOOTSTRAP_RESAMPLES} resamples, seed 0). The AP tolerance is broken only when the whole interval "
              "is over it; an interval wider than the tolerance cannot resolve it (not resolvable)."]
    return write_report_files(folder, "parity", report, "\n".join(lines) + "\n", _chart)


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
    ax.set_yticks(y, [artifact_name(a) + ("" if a["ok"] else "  FAIL") for a in arts])
    ax.set_title("max abs difference vs PyTorch (dashed: tolerance)")
    ax.legend(fontsize=8)
    ax = axes[1]
    match = [np.nan if a["metrics"].get("top100_match") is None else a["metrics"]["top100_match"] for a in arts]
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
