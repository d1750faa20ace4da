"""`qat --sensitivity`: which layer groups tolerate INT8? Each group is quantized alone (post-training, the
calibration list sets its ranges) and measured against the FP32 model: raw output deviation on the
calibration images (queries paired as in parity) and, on the validation split, the AP drop. The ranked
table comes with a suggested policy: every group whose AP drop reaches SUGGEST_AP_DROP stays float."""

import copy

import numpy as np
import yaml

from .policy import GROUPS, Policy

SUGGEST_AP_DROP = 0.002  # AP (0..1) one group alone may cost before the suggestion keeps it float


def scan(weights, data, calib, imgsz=None, max_images=None, progress=None) -> dict:
    from ..compare import compare_raw
    from ..data.coco import CocoDetection, resolve_coco_dir
    from ..data.transforms import eval_transforms
    from ..model.checkpoint import load_model
    from ..runtime.pytorch import torch_outputs
    from ..train.evaluate import evaluate
    from .fakequant import quantize

    fp32 = load_model(weights, imgsz=imgsz).deploy()
    ann, images = resolve_coco_dir(data, "val")
    val = CocoDetection(ann, images, transforms=eval_transforms(fp32.imgsz))
    val.images = val.images[:max_images or 100]
    batches = calib.batches(fp32.imgsz, 4)
    x = np.concatenate(batches)[:8]
    ref_raw = torch_outputs(fp32, x)
    base = evaluate(fp32, val, batch_size=4)
    rows = []
    task = progress.add_task("sensitivity", total=len(GROUPS)) if progress else None
    for group in GROUPS:
        model = copy.deepcopy(fp32)
        quantize(model, Policy({"name": f"only {group}", "quantize": [group]}, "sensitivity"), batches)
        raw = compare_raw(*ref_raw, *torch_outputs(model, x))
        ap = evaluate(model, val, batch_size=4)
        rows.append({"group": group, "layers": len(model.quant["layers"]), "ap": ap["AP"],
                     "ap_drop": base["AP"] - ap["AP"], "ap50_drop": base["AP50"] - ap["AP50"],
                     "raw_score_mean": raw["raw_score_mean"], "raw_box_mean": raw["raw_box_mean"],
                     "queries_swapped": raw["queries_swapped"]})
        if progress:
            progress.advance(task)
    rows.sort(key=lambda r: (-r["ap_drop"], -r["raw_score_mean"]))
    keep_float = [r["group"] for r in rows if r["ap_drop"] >= SUGGEST_AP_DROP]
    suggested = {"name": "suggested", "description": f"from `qat --sensitivity` on {weights}: groups whose AP "
                 f"drop alone reached {SUGGEST_AP_DROP} stay float", "quantize": list(GROUPS),
                 "keep_float": keep_float}
    return {"weights": str(weights), "data": str(data), "calib": calib.describe(), "val_images": len(val.images),
            "fp32_AP": base["AP"], "threshold_ap_drop": SUGGEST_AP_DROP, "groups": rows, "suggested_policy": suggested}


def print_table(report, console):
    from rich.table import Table

    table = Table(title=f"INT8 sensitivity (one group at a time; FP32 AP {report['fp32_AP']:.4f}, "
                        f"{report['val_images']} images)")
    for col in ("group", "layers", "AP drop", "AP50 drop", "score dev (mean)", "box dev (mean)", "swapped"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for r in report["groups"]:
        table.add_row(r["group"], str(r["layers"]), f"{r['ap_drop']:+.4f}", f"{r['ap50_drop']:+.4f}",
                      f"{r['raw_score_mean']:.2e}", f"{r['raw_box_mean']:.2e}", f"{r['queries_swapped']:.3f}")
    console.print(table)
    kf = report["suggested_policy"]["keep_float"]
    console.print(f"suggested policy: keep float {', '.join(kf) if kf else 'nothing'}", highlight=False)


def write_report(report, folder) -> dict:
    from ..fsutil import atomic_write_text, write_report_files

    lines = ["# INT8 sensitivity", "", f"Weights {report['weights']}; FP32 AP {report['fp32_AP']:.4f} on "
             f"{report['val_images']} validation images; calibration {report['calib']['list']}.", "",
             "| group | layers | AP drop | AP50 drop | score dev (mean) | box dev (mean) | swapped |",
             "|---|---|---|---|---|---|---|"]
    for r in report["groups"]:
        lines.append(f"| {r['group']} | {r['layers']} | {r['ap_drop']:+.4f} | {r['ap50_drop']:+.4f} | "
                     f"{r['raw_score_mean']:.2e} | {r['raw_box_mean']:.2e} | {r['queries_swapped']:.3f} |")
    lines += ["", f"Suggested policy (`suggested_policy.yaml`): keep float "
              f"{', '.join(report['suggested_policy']['keep_float']) or 'nothing'}."]
    files = write_report_files(folder, "sensitivity", report, "\n".join(lines) + "\n", _chart, option="--out")
    atomic_write_text(folder / "suggested_policy.yaml", yaml.safe_dump(report["suggested_policy"], sort_keys=False))
    files["policy"] = folder / "suggested_policy.yaml"
    return files


def _chart(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["groups"]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.5))
    ax.barh([r["group"] for r in rows][::-1], [100 * r["ap_drop"] for r in rows][::-1])
    ax.axvline(100 * report["threshold_ap_drop"], color="red", linestyle="--", label="suggestion threshold")
    ax.set_xlabel("AP drop (points) with only this group in INT8")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def scan_and_write(weights, data, calib, out, imgsz=None, max_images=None, progress=None) -> tuple:
    """`qat --sensitivity`: the scan, written to `out` (table, JSON, suggested policy); returns (report, files)."""
    report = scan(weights, data, calib, imgsz=imgsz, max_images=max_images, progress=progress)
    return report, write_report(report, out)
