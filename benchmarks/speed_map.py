"""The speed/accuracy map of INT8: for each policy and each CPU runtime, p50 at 640 (round-robin in one process,
or each model alone in fresh processes with --processes N; beside FP32 on the same runtime and the authors' own
FP32 ONNX export on onnxruntime) against the AP drop to an equally trained FP32 model (read from
benchmarks/equal_schedule.py's JSON, with its intervals).

    python benchmarks/speed_map.py [--weights shapes] [--imgsz 640] [--runs 20] [--policies default all]
        [--repo /path/to/RT-DETR/rtdetrv2_pytorch] [--accuracy docs/equal_schedule.json] [--processes N]
        [--out docs/speed_map]

Speed does not depend on the weights' values: the INT8 files here are post-training INT8 of --weights with each
policy, the same graphs a QAT checkpoint of that policy exports. Writes OUT.md, OUT.json and OUT.png; prints the
CPU's features. Ratios within the run are what carries across machines, not the milliseconds.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent
# runtime -> (format, INT8 form, the recipes' ΔAP limit in points)
RUNTIMES = {"onnxruntime": ("onnx", "u8s8", 0.3), "openvino": ("openvino", "s8s8", 0.3),
            "tflite": ("tflite", "static", 1.0)}
AUTHORS = "authors' export, onnxruntime FP32"
# the issue's targets (#23): runtime -> (the ratio it is read on, at least); FP32 rows: no slower than the authors'
TARGETS = {"openvino": ("vs_authors", 3.5), "onnxruntime": ("vs_authors", 3.0), "tflite": ("vs_own_fp32", 2.5)}
FP32_TARGET = 1.0


def verdict(ratio, interval, target) -> str:
    """"met" when the whole 95% interval is at or above the target, "not met" when it is all below, "not
    resolved" when it holds the target (the run cannot tell); without an interval, the ratio alone decides."""
    lo, hi = interval or (ratio, ratio)
    return "met" if lo >= target else "not met" if hi < target else "not resolved"


def targets(rows) -> list:
    """Per runtime: the fastest INT8 policy whose AP gate passes, and the FP32 file, against their targets."""
    def against(r, key, target):
        interval = r.get(f"{key}_interval")
        return {"model": r["model"], "ratio": key, "target": target, "value": r[key], "interval": interval,
                "verdict": verdict(r[key], interval, target)}

    out = []
    for runtime, (key, target) in TARGETS.items():
        int8 = [r for r in rows if r["runtime"] == runtime and r["policy"] and r[key]
                and (r["accuracy"] or {}).get("gate") == "pass"]
        if int8:
            out.append(against(max(int8, key=lambda r: r[key]), key, target))
        fp32 = [r for r in rows if r["runtime"] == runtime and not r["policy"] and r["model"] != AUTHORS
                and r["vs_authors"]]
        if fp32 and runtime != "tflite":
            out.append(against(fp32[0], "vs_authors", FP32_TARGET))
    return out


def accuracy_of(path, runtime, policy):
    """(drop, lo, hi, gate) in points for a QAT policy on a runtime, from equal_schedule.py's JSON, or None."""
    if not path or not Path(path).is_file():
        return None
    for r in json.loads(Path(path).read_text())["rows"]:
        if r.get("runtime") == runtime and r.get("source") == f"qat_{policy}":
            v = r["vs_fp32"]
            return {"drop": v["drop"], "lo": v["lo"], "hi": v["hi"], "gate": v["gate"], "limit": v["limit"]}
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="shapes")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--calib", default="shapes-64")
    ap.add_argument("--policies", nargs="+", default=["default", "all"])
    ap.add_argument("--runtimes", default=",".join(RUNTIMES))
    ap.add_argument("--repo", default=None, help="the authors' rtdetrv2_pytorch folder: time their export too")
    ap.add_argument("--accuracy", default=str(ROOT / "docs" / "equal_schedule.json"))
    ap.add_argument("--processes", type=int, default=0,
                    help="N >= 1: each model alone in N fresh processes (rtdetr-edge benchmark --processes)")
    ap.add_argument("--work", default=None, help="keep the exports here (default: a temporary folder)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "speed_map"))
    args = ap.parse_args()

    from rtdetr_edge.benchmark import benchmark, speedup_interval, spread
    from rtdetr_edge.sysinfo import cpu_info, cpu_line

    cpu = cpu_info()
    print(cpu_line(cpu), flush=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="speedmap-"))
    runtimes = [r.strip() for r in args.runtimes.split(",")]
    models = {}  # label -> (path, runtime, policy or None)

    sys.path.insert(0, str(Path(__file__).parent))
    from int8_profile import cached_authors_onnx, cached_export

    def bundle(name, fmt, **extra):
        return cached_export(work, name, args.weights, fmt, args.imgsz, **extra)

    if args.repo:
        models[AUTHORS] = (cached_authors_onnx(args.repo, args.weights, args.imgsz, work), "onnxruntime", None)
    for runtime in runtimes:
        fmt, form, _ = RUNTIMES[runtime]
        models[f"{runtime} FP32"] = (bundle(f"{fmt}_fp32", fmt), runtime, None)
        for p in args.policies:
            models[f"{runtime} INT8 {form}, policy {p}"] = (
                bundle(f"{fmt}_{form}_{Path(p).stem}", fmt, precision="int8", int8_form=form, calib=args.calib, policy=p),
                runtime, p)
    report = benchmark([str(m[0]) for m in models.values()], runs=args.runs, warmup=3, processes=args.processes)
    by = {e["model"]: e for e in report["models"]}
    rows = []
    base = by[str(models[AUTHORS][0])] if AUTHORS in models else None
    for label, (path, runtime, policy) in models.items():
        e = by[str(path)]
        own = by[str(models[f"{runtime} FP32"][0])] if label != AUTHORS else None
        # each ratio with its 95% interval over the processes (None in one process or with few processes)
        rows.append({"model": label, "runtime": runtime, "policy": policy, "ran": e["ran"], "p50_ms": e["p50_ms"],
                     "p90_ms": e["p90_ms"], "after_another_ms": e.get("p50_after_another_ms"), "spread": spread(e),
                     "vs_own_fp32": own["p50_ms"] / e["p50_ms"] if own else None,
                     "vs_own_fp32_interval": speedup_interval(own, e) if own and own is not e else None,
                     "vs_authors": base["p50_ms"] / e["p50_ms"] if base else None,
                     "vs_authors_interval": speedup_interval(base, e) if base and base is not e else None,
                     "accuracy": accuracy_of(args.accuracy, runtime, policy) if policy else None})
    result = {"cpu": cpu, "imgsz": args.imgsz, "runs": args.runs, "weights": args.weights,
              "date": time.strftime("%Y-%m-%d"), "accuracy_from": args.accuracy, "rows": rows,
              "benchmark": report}
    result["targets"] = targets(rows)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str))
    out.with_suffix(".md").write_text(markdown(args, result))
    chart(result, out.with_suffix(".png"))
    print(out.with_suffix(".md").read_text())


def markdown(args, result) -> str:
    from rtdetr_edge.benchmark import speedup_text, spread_title

    cpu = result["cpu"]
    lines = ["# INT8 speed/accuracy map", "",
             f"`python benchmarks/speed_map.py --imgsz {args.imgsz} --runs {args.runs} --policies "
             f"{' '.join(args.policies)}{' --repo ...' if args.repo else ''}"
             f"{f' --processes {args.processes}' if args.processes else ''}` on {cpu.get('model')} "
             f"({', '.join(cpu.get('features', []))}), {result['date']}. Batch 1, the runtimes' default threads; "
             f"{result['benchmark']['timing']} ({result['benchmark']['runs']} timed runs per model; "
             "rtdetr_edge.benchmark). AP drops: "
             f"{Path(args.accuracy).name} (QAT of each policy against FP32 fine-tuned on the same schedule, paired "
             "95% intervals; the limits are the recipes').", "",
             "Ratios carry a 95% interval when the models ran in enough processes: a bootstrap over the processes "
             "(rtdetr_edge.benchmark.speedup_interval), the noise of this run.", "",
             f"| model | ran | p50 ms | {spread_title(result['benchmark'])} | vs its runtime's FP32 | vs authors' ORT FP32 "
             "| AP drop [95% interval], points | limit | gate |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        a = r["accuracy"]
        acc = (f"{a['drop']:+.2f} [{a['lo']:+.2f}, {a['hi']:+.2f}] | {a['limit']:.1f} | {a['gate']}" if a
               else ("not measured | - | -" if r["policy"] else "- | - | -"))
        lines.append(f"| {r['model']} | {r['ran']} | {r['p50_ms']:.1f} | {r['spread']} | "
                     f"{speedup_text(r['vs_own_fp32'], r.get('vs_own_fp32_interval')) if r['vs_own_fp32'] else '-'} | "
                     f"{speedup_text(r['vs_authors'], r.get('vs_authors_interval')) if r['vs_authors'] else '-'} | {acc} |")
    if result.get("targets"):
        lines += ["", "Targets (the fastest INT8 policy that passes its AP gate, and FP32): met when the whole interval "
                  "is at or above the target, not resolved when the interval holds it.", "",
                  "| model | ratio | target | measured [95%] | verdict |", "|---|---|---|---|---|"]
        for t in result["targets"]:
            what = "vs its runtime's FP32" if t["ratio"] == "vs_own_fp32" else "vs authors' ORT FP32"
            lines.append(f"| {t['model']} | {what} | {t['target']:.1f}x | {speedup_text(t['value'], t['interval'])} | "
                         f"{t['verdict']} |")
    return "\n".join(lines) + "\n"


def chart(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"onnxruntime": "tab:blue", "openvino": "tab:purple", "tflite": "tab:orange"}
    markers = ["o", "s", "^", "D", "v"]
    policies = sorted({r["policy"] for r in result["rows"] if r["policy"]})
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in result["rows"]:
        color = colors.get(r["runtime"], "gray")
        if r["policy"] is None:  # FP32: no drop by definition
            ax.scatter([r["p50_ms"]], [0.0], color=color, marker="x" if "authors" not in r["model"] else "*", s=70,
                       label=r["model"])
            continue
        a = r["accuracy"]
        if a is None:
            continue
        ax.errorbar([r["p50_ms"]], [a["drop"]], yerr=[[a["drop"] - a["lo"]], [a["hi"] - a["drop"]]], color=color,
                    marker=markers[policies.index(r["policy"]) % len(markers)], capsize=3, label=r["model"])
    for limit in sorted({RUNTIMES[k][2] for k in RUNTIMES}):
        ax.axhline(limit, color="gray", linestyle="--", linewidth=0.8)
        x0, x1 = ax.get_xlim()
        ax.text(x0 + 0.4 * (x1 - x0), limit, f"{limit:.1f}-point limit", va="bottom", ha="left", fontsize=7)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xlabel(f"p50 ms at {result['imgsz']} px, batch 1")
    ax.set_ylabel("AP drop vs equally trained FP32 (points; lower is better)")
    ax.set_title("INT8 speed/accuracy per runtime and policy")
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
