"""`benchmark`: how fast each artifact runs on this machine, as numbers users can compare.

Every model is loaded in one process and timed **round-robin in blocks** (a few runs of each, then a few of
the next, ...), so a change in machine load hits all of them alike; the speed-up against the first model is a
ratio measured side by side. Each round runs the models in a new seeded order, so no model always follows the
same one (in a fixed order a model's time depended on its place: docs/int8.md). The first run of each block
pays for the model that ran before it (its weights were pushed out of the CPU's caches, the runtime's threads
were asleep): it is reported apart ("after another model") and the latency is that of the block's other runs,
what a model that runs alone (a camera loop) gets. On a 32 MB-L3 EPYC an OpenVINO INT8 model ran 76-78 ms
right after another model and 59-60 ms in a row (docs/speed_map.md); ``block=1`` is plain round-robin. Timed: the runtime's inference on a preprocessed batch (what differs between artifacts), not
image decoding. Reported per model: p50/p90/p99 latency, FPS (images per second at p50), the memory the
process grew by while loading and warming it up, the precision the runtime really computed in, and the CPU's
features that decide which kernels run. Device side: no PyTorch unless a checkpoint is given.
"""

import resource
import time
from pathlib import Path

import numpy as np

from .errors import UserError


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ran(runtime) -> str:
    """The precision the runtime computes in, as far as it can tell (Runtime.effective_precision)."""
    return runtime.effective_precision


def _name(path, runtime) -> str:
    m = runtime.manifest or {}
    if m:
        return f"{Path(path).name} ({m.get('format')} {m.get('precision')}, {runtime.backend})"
    return f"{Path(path).name} ({runtime.backend})"


def benchmark(models, runs=30, warmup=3, threads=None, batch=1, progress=None, block=3) -> dict:
    """`runs` timed runs per model, in rounds of `block` consecutive runs per model (the first untimed when
    block > 1)."""
    from .runtime.base import open_model
    from .sysinfo import cpu_info

    if not models:
        raise UserError("--model: give at least one bundle, exported file or checkpoint")
    entries = []
    for path in models:
        before = _rss_mb()
        runtime = open_model(str(path), threads=threads)
        h, w = runtime.imgsz
        x = np.random.default_rng(0).random((batch, 3, h, w), dtype=np.float32)
        sizes = np.tile(np.array([[w, h]], dtype=np.int64), (batch, 1))
        for _ in range(warmup):
            runtime.infer(x, sizes)
        entries.append({"model": str(path), "name": _name(path, runtime), "backend": runtime.backend,
                        "imgsz": [h, w], "ran": _ran(runtime), "memory_mb": round(_rss_mb() - before, 1),
                        "_runtime": runtime, "_x": x, "_sizes": sizes, "times_ms": [], "first_ms": []})
    # each round in a new (seeded) order: with 10 models in a fixed order, the same ONNX file measured 1.21x
    # another in one order and 0.85x in the other (the cause was not isolated: with two models the order made
    # no difference, with or without onnxruntime's thread spinning)
    rng = np.random.default_rng(0)
    timed = max(1, block - 1)
    rounds = -(-runs // timed)
    for r in range(rounds):
        for k in rng.permutation(len(entries)):
            e = entries[k]
            for j in range(block):
                t0 = time.perf_counter()
                e["_runtime"].infer(e["_x"], e["_sizes"])
                ms = (time.perf_counter() - t0) * 1e3
                if j == 0:
                    e["first_ms"].append(ms)
                if (block == 1 or j > 0) and len(e["times_ms"]) < runs:
                    e["times_ms"].append(ms)
        if progress:
            progress(r + 1, rounds)
    first = None
    for e in entries:
        t = np.asarray(e["times_ms"])
        e.update(p50_ms=float(np.percentile(t, 50)), p90_ms=float(np.percentile(t, 90)),
                 p99_ms=float(np.percentile(t, 99)), mean_ms=float(t.mean()),
                 p50_after_another_ms=float(np.percentile(e["first_ms"], 50)))
        e["fps"] = batch * 1000.0 / e["p50_ms"]
        first = first or e["p50_ms"]
        e["speedup_vs_first"] = first / e["p50_ms"]
        for k in ("_runtime", "_x", "_sizes"):
            del e[k]
    how = (f"round-robin in one process in blocks of {block} runs per model, the first untimed"
           if block > 1 else "round-robin in one process, one run per model per round")
    return {"cpu": cpu_info(), "runs": runs, "warmup": warmup, "threads": threads, "batch": batch, "block": block,
            "timing": how + "; each round in a new seeded order; inference on a preprocessed batch",
            "models": entries}


def write_report(report, folder) -> dict:
    """benchmark.json, benchmark.md and benchmark.png in `folder`."""
    from .fsutil import write_report_files

    cpu = report["cpu"]
    lines = ["# Benchmark", "", f"CPU: {cpu['model']} ({cpu['machine']}, {cpu['cores']} cores; "
             f"{', '.join(cpu['features']) or 'no SIMD flags read'}); batch {report['batch']}, "
             f"{report['runs']} timed runs per model after {report['warmup']} warm-up, threads "
             f"{report['threads'] or 'runtime default'}; {report['timing']}.", "",
             "| model | ran | p50 ms | p90 ms | p99 ms | FPS | memory MB | speed-up vs first | p50 ms right after "
             "another model |", "|---" * 9 + "|"]
    for e in report["models"]:
        lines.append(f"| {e['name']} | {e['ran']} | {e['p50_ms']:.1f} | {e['p90_ms']:.1f} | {e['p99_ms']:.1f} | "
                     f"{e['fps']:.1f} | {e['memory_mb']:.0f} | {e['speedup_vs_first']:.2f}x | "
                     f"{e['p50_after_another_ms']:.1f} |")
    return write_report_files(folder, "benchmark", report, "\n".join(lines) + "\n", _chart, option="--out")


def _chart(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = report["models"]
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(models) + 2))
    y = np.arange(len(models))
    p50 = [e["p50_ms"] for e in models]
    err = [[0] * len(models), [e["p90_ms"] - e["p50_ms"] for e in models]]
    ax.barh(y, p50, xerr=err, color="tab:blue", capsize=3)
    for i, e in enumerate(models):
        ax.text(e["p90_ms"], i, f"  {e['p50_ms']:.1f} ms, {e['speedup_vs_first']:.2f}x", va="center", fontsize=8)
    ax.set_yticks(y, [f"{e['name']}\n[{e['ran']}]" for e in models], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"latency p50 ms (whisker: p90), round-robin in blocks of {report.get('block', 1)} in one process")
    ax.set_title(f"{report['cpu']['model']}: {', '.join(report['cpu']['features'])}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
