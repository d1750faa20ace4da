"""Is this CPU quiet enough to read INT8 speed-ups? The authors' FP32 export and our INT8 files, interleaved in one
process for a while, as a time series; optionally, what a load on the other CPU does to each.

    python benchmarks/machine_noise.py --repo /path/to/RT-DETR/rtdetrv2_pytorch [--weights shapes] [--imgsz 640]
        [--policy all] [--seconds 300] [--window 20] [--contention] [--work W] [--out docs/machine_noise]

Part 1, one process: a round is a block per model, one untimed run then two timed runs of the authors' export
and six of each INT8 file (about equal time each), repeated for --seconds. Because the models alternate within
seconds, they see the same machine: the ratio of their p50s over the whole span, and per --window seconds, is a
ratio measured side by side. (The first run after another model is slower, the authors' export's most: it is not
timed. The speed targets are read each model alone, `rtdetr-edge benchmark --processes`; this is a diagnostic.) Each model's
"slowdown" in a window is its median there over its own 10th percentile over the run: on a quiet CPU every model
stays near 1.0; on a shared host a model slowed where the others are not shows contention for what that model
needs most.

Part 2, --contention (needs 2 CPUs or more): each model pinned to CPU 0 with one thread, alone and with a load
pinned to CPU 1 (a 64 MB memory stream; a float32 matrix product), in alternating blocks. It tells whether a
neighbour inside this machine can slow one model more than another.

Writes OUT.md, OUT.json and OUT.png; prints the CPU's features first.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parent.parent
AUTHORS = "authors' export, onnxruntime FP32"
LOADS = {"64 MB memory stream": "import numpy as np\na = np.ones(8 << 20)\nwhile True: a.sum()",
         "float32 matrix product": "import numpy as np\na = np.ones((512, 512), np.float32)\nwhile True: a @ a"}
QUIET = 1.05  # a quiet window: the authors' export within 5% of its own p10
RUNS_PER_ROUND = {AUTHORS: 2}  # the INT8 files: 6 each (after one untimed run per block)


def open_models(paths: dict, threads):
    """label -> the model opened and warmed up as `rtdetr-edge benchmark` opens it (its runtime, input, "ran")."""
    from rtdetr_edge.benchmark import _open

    return {label: _open(path, threads, batch=1, warmup=3) for label, path in paths.items()}


def timed(e) -> float:
    t0 = time.perf_counter()
    e["_runtime"].infer(e["_x"], e["_sizes"])
    return (time.perf_counter() - t0) * 1e3


def series(models: dict, seconds: float) -> list:
    """[(seconds since start, label, ms)], the models interleaved in rounds."""
    from rich.progress import Progress

    rows, t0 = [], time.perf_counter()
    with Progress(transient=True) as bar:
        task = bar.add_task("interleaved rounds", total=seconds)
        while (now := time.perf_counter() - t0) < seconds:
            for label, m in models.items():
                timed(m)  # the first run after another model: not timed
                for _ in range(RUNS_PER_ROUND.get(label, 6)):
                    rows.append((time.perf_counter() - t0, label, timed(m)))
            bar.update(task, completed=min(now, seconds))
    return rows


def windows(rows, labels, width) -> list:
    """Per window of `width` seconds: each model's median ms (None where it did not run)."""
    end = max(t for t, _, _ in rows)
    out = []
    for k in range(int(end // width) + 1):
        w = {"start_s": k * width}
        for label in labels:
            v = [ms for t, lab, ms in rows if lab == label and k * width <= t < (k + 1) * width]
            w[label] = float(np.median(v)) if v else None
        out.append(w)
    return [w for w in out if all(w[label] is not None for label in labels)]


def gain(base, other):
    """How much more `other` is slowed than `base` in the same windows: the least-squares slope through the origin
    of (other - 1) on (base - 1). 1: slowed alike; 2: twice the slowdown. None when `base` never moved."""
    x, y = np.asarray(base) - 1, np.asarray(other) - 1
    return float(x @ y / (x @ x)) if x @ x > 0 else None


def quiet(ratios, resamples=2000) -> dict:
    """The ratio in the quiet windows (median), with a 95% bootstrap interval over them from 5 windows on: what a
    CPU without slow phases would likely give. An estimate from a selection, not a reading of the whole run."""
    out = {"quiet_windows": len(ratios), "quiet_ratio": float(np.median(ratios)) if ratios else None,
           "quiet_interval": None}
    if len(ratios) >= 5:
        rng = np.random.default_rng(0)
        meds = np.median(rng.choice(ratios, (resamples, len(ratios))), axis=1)
        out["quiet_interval"] = [float(np.percentile(meds, 2.5)), float(np.percentile(meds, 97.5))]
    return out


def summarise(rows, labels, width) -> dict:
    times = {label: np.array([ms for _, lab, ms in rows if lab == label]) for label in labels}
    p10 = {label: float(np.percentile(t, 10)) for label, t in times.items()}
    ws = windows(rows, labels, width)
    for w in ws:
        w["slowdown"] = {label: w[label] / p10[label] for label in labels}
    models = []
    for label in labels:
        t = times[label]
        row = {"model": label, "runs": len(t), "p10_ms": p10[label], "p50_ms": float(np.percentile(t, 50)),
               "p90_ms": float(np.percentile(t, 90)),
               "window_slowdown_max": max(w["slowdown"][label] for w in ws)}
        row["p90_over_p10"] = row["p90_ms"] / p10[label]
        if label != AUTHORS:
            base = times[AUTHORS]
            ratios = [w[AUTHORS] / w[label] for w in ws]
            row |= {"vs_authors_p50": float(np.percentile(base, 50)) / row["p50_ms"],
                    "vs_authors_p10": p10[AUTHORS] / p10[label],
                    "window_ratio_min": min(ratios), "window_ratio_median": float(np.median(ratios)),
                    "window_ratio_max": max(ratios),
                    # windows where this model is slowed and the authors' export is not
                    "slowed_alone": sum(1 for w in ws if w["slowdown"][label] >= 1.15 and w["slowdown"][AUTHORS] < 1.1),
                    "slowdown_correlation": float(np.corrcoef([w["slowdown"][label] for w in ws],
                                                              [w["slowdown"][AUTHORS] for w in ws])[0, 1])
                    if len(ws) > 2 else None,
                    "slowdown_gain": gain([w["slowdown"][AUTHORS] for w in ws], [w["slowdown"][label] for w in ws])}
            row |= quiet([w[AUTHORS] / w[label] for w in ws if w["slowdown"][AUTHORS] < QUIET])
        models.append(row)
    return {"models": models, "windows": ws, "window_s": width}


def contention(paths: dict, blocks: int) -> list:
    """Each model pinned to CPU 0, one thread, alone and beside each load pinned to CPU 1: p50 ms and slowdown."""
    os.sched_setaffinity(0, {0})
    models = open_models(paths, threads=1)
    times = {(label, load): [] for label in models for load in [None, *LOADS]}
    for b in range(blocks):
        order = [None, *LOADS] if b % 2 == 0 else [*reversed(LOADS), None]
        for load in order:
            proc = None
            if load:
                proc = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-c", LOADS[load]])
                time.sleep(0.5)
            try:
                for label, m in models.items():
                    times[(label, load)] += [timed(m) for _ in range(2)]
            finally:
                if proc:
                    proc.kill()
                    proc.wait()
    out = []
    for label in models:
        alone = float(np.median(times[(label, None)]))
        out.append({"model": label, "alone_ms": alone,
                    "with": {load: {"p50_ms": float(np.median(times[(label, load)])),
                                    "slowdown": float(np.median(times[(label, load)])) / alone} for load in LOADS}})
    return out


def markdown(args, result) -> str:
    s = result["series"]
    lines = ["# Is this CPU quiet enough to read INT8 speed-ups?", "",
             f"`python benchmarks/machine_noise.py --seconds {args.seconds:g} --window {args.window:g} --policy "
             f"{args.policy}{' --contention' if args.contention else ''} --repo ...` on {result['cpu_line'][5:]}, "
             f"{result['date']}. {args.imgsz}x{args.imgsz}, batch 1, the runtimes' default threads; INT8 = "
             f"post-training INT8 of `{args.weights}`, policy `{args.policy}`.", "",
             f"## Interleaved in one process ({args.seconds:g} s; a round: per model one untimed run, then two "
             f"timed runs of the authors' export and six of each INT8 file)", "",
             "| model | ran | runs | p10 ms | p50 ms | p90/p10 | vs authors' p50 (p10) | per window: ratio min-median-max "
             f"| largest {s['window_s']:g} s window slowdown | windows slowed alone | slowdown correlation, gain "
             "| quiet windows: ratio [95%] |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in s["models"]:
        ran = result["ran"][m["model"]]
        if m["model"] == AUTHORS:
            lines.append(f"| {m['model']} | {ran} | {m['runs']} | {m['p10_ms']:.1f} | {m['p50_ms']:.1f} | "
                         f"{m['p90_over_p10']:.2f} | 1.00x | - | {m['window_slowdown_max']:.2f}x | - | - | - |")
        else:
            corr = "-" if m["slowdown_correlation"] is None else f"{m['slowdown_correlation']:.2f}"
            corr += "" if m["slowdown_gain"] is None else f", {m['slowdown_gain']:.1f}x"
            lines.append(f"| {m['model']} | {ran} | {m['runs']} | {m['p10_ms']:.1f} | {m['p50_ms']:.1f} | "
                         f"{m['p90_over_p10']:.2f} | {m['vs_authors_p50']:.2f}x ({m['vs_authors_p10']:.2f}x) | "
                         f"{m['window_ratio_min']:.2f}-{m['window_ratio_median']:.2f}-{m['window_ratio_max']:.2f}x | "
                         f"{m['window_slowdown_max']:.2f}x | {m['slowed_alone']} of {len(s['windows'])} | {corr} | {quiet_text(m)} |")
    lines += ["", "Slowdown: a window's median over the model's own 10th percentile in this run. \"Slowed alone\": "
              "windows where the INT8 file ran 1.15x or more over its p10 while the authors' export stayed under 1.1x. "
              "Correlation: of the windows' slowdowns with the authors' export's; gain: how many times the authors' "
              "slowdown the INT8 file takes in the same windows (1.0x: alike). Quiet windows: those where the authors' "
              f"export ran within {QUIET:.2f}x of its p10; the median ratio there, with a 95% bootstrap interval over "
              "them from 5 windows on, estimates what a CPU without slow phases would give. It is a selection, not a "
              "reading of the run. On a quiet CPU the ratios per window stay together and no model is slowed alone.",
              ""]
    if result.get("contention"):
        loads = list(LOADS)
        lines += ["## A load on the other CPU (each model pinned to CPU 0, one thread; the load pinned to CPU 1)", "",
                  "| model | alone ms | " + " | ".join(f"with a {load}" for load in loads) + " |",
                  "|---|---|" + "---|" * len(loads)]
        for c in result["contention"]:
            lines.append(f"| {c['model']} | {c['alone_ms']:.1f} | " + " | ".join(
                f"{c['with'][load]['p50_ms']:.1f} ms ({c['with'][load]['slowdown']:.2f}x)" for load in loads) + " |")
        lines.append("")
    lines.append(f"![slowdown per window]({Path(args.out).name}.png)")
    return "\n".join(lines) + "\n"


def quiet_text(m) -> str:
    if not m.get("quiet_windows"):
        return "none"
    text = f"{m['quiet_ratio']:.2f}x"
    if m.get("quiet_interval"):
        text += " [{:.2f}-{:.2f}]".format(*m["quiet_interval"])
    return f"{text} ({m['quiet_windows']} windows)"


def chart(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["series"]
    fig, ax = plt.subplots(figsize=(9, 4))
    for m in s["models"]:
        ax.plot([w["start_s"] for w in s["windows"]], [w["slowdown"][m["model"]] for w in s["windows"]],
                marker="o", ms=3, label=m["model"])
    ax.axhline(1.15, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"seconds (windows of {s['window_s']:g} s)")
    ax.set_ylabel("window median / own p10")
    ax.set_title("Interleaved in one process: who is slowed, when")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True, help="the authors' rtdetrv2_pytorch folder (their export is the base)")
    ap.add_argument("--weights", default="shapes")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--calib", default="shapes-64")
    ap.add_argument("--policy", default="all")
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--window", type=float, default=20)
    ap.add_argument("--contention", action="store_true", help="also the pinned runs beside a load on CPU 1")
    ap.add_argument("--blocks", type=int, default=6, help="--contention: alternating blocks per load")
    ap.add_argument("--work", default=None, help="keep the exports here (speed_map.py's --work serves too)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "machine_noise"))
    args = ap.parse_args()
    if args.seconds <= 0 or args.window <= 0 or args.window > args.seconds:
        ap.error("--seconds and --window must be positive, the window no longer than the run")
    if args.contention and (os.cpu_count() or 1) < 2:
        ap.error("--contention needs 2 CPUs or more")

    import tempfile

    from rtdetr_edge.sysinfo import cpu_info, cpu_line

    sys.path.insert(0, str(Path(__file__).parent))
    from int8_profile import cached_authors_onnx, cached_export

    cpu = cpu_info()
    print(cpu_line(cpu), flush=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="noise-"))
    policy = Path(args.policy).stem
    paths = {AUTHORS: cached_authors_onnx(args.repo, args.weights, args.imgsz, work),
             "OpenVINO INT8 s8s8": cached_export(work, f"openvino_s8s8_{policy}", args.weights, "openvino", args.imgsz,
                                                 precision="int8", int8_form="s8s8", calib=args.calib,
                                                 policy=args.policy),
             "onnxruntime INT8 u8s8": cached_export(work, f"onnx_u8s8_{policy}", args.weights, "onnx", args.imgsz,
                                                    precision="int8", int8_form="u8s8", calib=args.calib,
                                                    policy=args.policy)}
    models = open_models(paths, threads=None)
    rows = series(models, args.seconds)
    if not windows(rows, list(models), args.window):
        ap.error(f"no --window of {args.window:g} s held a run of every model: use a longer one (a round of all "
                 "three takes a few seconds)")
    result = {"cpu": cpu, "cpu_line": cpu_line(cpu), "date": time.strftime("%Y-%m-%d %H:%M"), "imgsz": args.imgsz,
              "policy": args.policy, "ran": {label: e["ran"] for label, e in models.items()},
              "series": summarise(rows, list(models), args.window), "rows": rows}
    del models
    if args.contention:
        result["contention"] = contention(paths, args.blocks)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    out.with_suffix(".md").write_text(markdown(args, result))
    chart(result, out.with_suffix(".png"))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
