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

``processes=N`` times each model **alone in its own process** instead, as a deployed model runs: N fresh
processes per model, one at a time, each round in a new seeded order; each process loads its model, warms it up
and times its share of the runs in a row. What else a process holds moves a model's speed: an OpenVINO INT8 model
took 57.8 ms with the FP32 IR (80 MB of weights) in the same process and 48.3 ms with only a small model beside
it (docs/int8.md). Processes started alike differ too (20% on a 2-core EPYC), so each process's p50 is reported,
and with at least MIN_PROCESSES_FOR_INTERVAL processes each speed-up gets a 95% interval: a bootstrap over the
processes (each model's processes resampled with replacement, their runs pooled, the ratio of the p50s), so a
ratio is read with the noise of the run it came from. Ratios within one process have no such interval: its runs
are not independent samples of the machine's state.
"""

import resource
import time
from pathlib import Path

import numpy as np

from .errors import UserError

MIN_PROCESSES_FOR_INTERVAL = 5  # fewer processes give no usable bootstrap over them
BOOTSTRAP = 2000  # resamples of the speed-up interval


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


def _open(path, threads, batch, warmup) -> dict:
    """The model at `path` opened and warmed up, as a benchmark entry (its runtime and inputs under _keys)."""
    from .runtime.base import open_model

    before = _rss_mb()
    runtime = open_model(str(path), threads=threads)
    h, w = runtime.imgsz
    x = np.random.default_rng(0).random((batch, 3, h, w), dtype=np.float32)
    sizes = np.tile(np.array([[w, h]], dtype=np.int64), (batch, 1))
    for _ in range(warmup):
        runtime.infer(x, sizes)
    return {"model": str(path), "name": _name(path, runtime), "backend": runtime.backend,
            "imgsz": [h, w], "ran": _ran(runtime), "memory_mb": round(_rss_mb() - before, 1),
            "_runtime": runtime, "_x": x, "_sizes": sizes, "times_ms": [], "first_ms": []}


def _time_alone(path, threads, batch, warmup, runs) -> dict:
    """In a fresh process: open one model, warm it up, time `runs` runs in a row."""
    import os

    e = _open(path, threads, batch, warmup)
    for _ in range(runs):
        t0 = time.perf_counter()
        e["_runtime"].infer(e["_x"], e["_sizes"])
        e["times_ms"].append((time.perf_counter() - t0) * 1e3)
    return {k: v for k, v in e.items() if not k.startswith("_")} | {"pid": os.getpid()}


def _alone(models, per, warmup, threads, batch, processes, progress) -> list:
    """Each model in `processes` fresh processes timing `per` runs each, one process at a time, each round in a
    new seeded order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    entries = [None] * len(models)
    rng = np.random.default_rng(0)
    ctx = multiprocessing.get_context("spawn")  # a new interpreter: nothing of the parent's in memory
    for r in range(processes):
        for k in rng.permutation(len(models)):
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                got = pool.submit(_time_alone, models[k], threads, batch, warmup, per).result()
            if entries[k] is None:
                entries[k] = {key: got[key] for key in ("model", "name", "backend", "imgsz", "ran")} | {
                    "times_ms": [], "processes": []}
            entries[k]["times_ms"] += got["times_ms"]
            entries[k]["processes"].append({"pid": got["pid"], "p50_ms": float(np.percentile(got["times_ms"], 50)),
                                            "memory_mb": got["memory_mb"], "times_ms": got["times_ms"]})
        if progress:
            progress(r + 1, processes)
    for e in entries:
        e["memory_mb"] = float(np.median([p["memory_mb"] for p in e["processes"]]))
    return entries


def benchmark(models, runs=30, warmup=3, threads=None, batch=1, progress=None, block=3, processes=0) -> dict:
    """`runs` timed runs per model, in rounds of `block` consecutive runs per model (the first untimed when
    block > 1); with processes=N, each model alone in N fresh processes instead (module docstring)."""
    from .sysinfo import cpu_info

    if not models:
        raise UserError("--model: give at least one bundle, exported file or checkpoint")
    if processes:  # the runs rounded up to a multiple of the processes: each times the same number
        per = -(-runs // processes)
        entries = _alone(models, per, warmup, threads, batch, processes, progress)
        return _summary(entries, cpu_info(), per * processes, warmup, threads, batch, block=None,
                        processes=processes, how=f"each model alone in {processes} fresh processes, one at a time, "
                        f"each round in a new seeded order; per process {warmup} warm-up runs, then {per} timed in "
                        "a row; inference on a preprocessed batch")
    entries = [_open(path, threads, batch, warmup) for path in models]
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
    for e in entries:
        e["p50_after_another_ms"] = float(np.percentile(e.pop("first_ms"), 50))
        for k in ("_runtime", "_x", "_sizes"):
            del e[k]
    how = (f"round-robin in one process in blocks of {block} runs per model, the first untimed"
           if block > 1 else "round-robin in one process, one run per model per round")
    return _summary(entries, cpu_info(), runs, warmup, threads, batch, block=block, processes=0,
                    how=how + "; each round in a new seeded order; inference on a preprocessed batch")


def speedup_interval(a, b, level=0.95, resamples=BOOTSTRAP, seed=0):
    """95% interval of the speed-up of entry `b` over entry `a` (a's p50 / b's p50), or None: a bootstrap over
    the processes each was timed in (each entry's processes resampled with replacement, independently, their
    runs pooled, p50 of each), when both ran in at least MIN_PROCESSES_FOR_INTERVAL processes."""
    groups = []
    for e in (a, b):
        procs = e.get("processes") or []
        if len(procs) < MIN_PROCESSES_FOR_INTERVAL or any("times_ms" not in p for p in procs):
            return None
        groups.append([np.asarray(p["times_ms"], dtype=float) for p in procs])
    rng = np.random.default_rng(seed)

    def p50s(group):
        n = len(group)
        return np.array([np.percentile(np.concatenate([group[i] for i in rng.integers(0, n, n)]), 50)
                         for _ in range(resamples)])

    ratios = p50s(groups[0]) / p50s(groups[1])
    lo, hi = np.percentile(ratios, [50 * (1 - level), 50 * (1 + level)])
    return [float(lo), float(hi)]


def has_intervals(report) -> bool:
    """Whether the report's speed-ups carry intervals (models timed alone in enough processes)."""
    return (report.get("processes") or 0) >= MIN_PROCESSES_FOR_INTERVAL


def speedup_text(ratio, interval) -> str:
    """"2.31x" or "2.31x [2.05-2.60]"."""
    return f"{ratio:.2f}x" + (f" [{interval[0]:.2f}-{interval[1]:.2f}]" if interval else "")


def _summary(entries, cpu, runs, warmup, threads, batch, block, processes, how) -> dict:
    for e in entries:
        t = np.asarray(e["times_ms"])
        e.update(p50_ms=float(np.percentile(t, 50)), p90_ms=float(np.percentile(t, 90)),
                 p99_ms=float(np.percentile(t, 99)), mean_ms=float(t.mean()))
        e["fps"] = batch * 1000.0 / e["p50_ms"]
        e["speedup_vs_first"] = entries[0]["p50_ms"] / e["p50_ms"]
        e["speedup_vs_first_interval"] = speedup_interval(entries[0], e) if e is not entries[0] else None
    return {"cpu": cpu, "runs": runs, "warmup": warmup, "threads": threads, "batch": batch, "block": block,
            "processes": processes, "timing": how, "models": entries, "sizes_differ": sizes_differ(entries)}


def input_size(e) -> str:
    return "x".join(str(v) for v in e["imgsz"])


def sizes_differ(entries):
    """A warning when the models take different input sizes (a 320 checkpoint beside a 640 export): their
    speed-ups then compare different work, which the table alone would not show. None when all match."""
    sizes = list(dict.fromkeys(input_size(e) for e in entries))
    if len(sizes) < 2:
        return None
    return (f"the models take different input sizes ({', '.join(sizes)}): their speed-ups compare different work; "
            "export them at one size (export --imgsz) to compare runtimes")


def spread(e) -> str:
    """The last column: the p50 right after another model (one process), or the range of the processes' p50s."""
    if "processes" in e:
        p50s = [p["p50_ms"] for p in e["processes"]]
        return f"{min(p50s):.1f}-{max(p50s):.1f}"
    return f"{e['p50_after_another_ms']:.1f}"


def spread_title(report) -> str:
    return "p50 ms per process (min-max)" if report.get("processes") else "p50 ms right after another model"


def protocol(report) -> str:
    """How the models were timed, in a few words (the table's title, the chart's axis)."""
    if report.get("processes"):
        return f"each model alone in {report['processes']} processes"
    return f"round-robin in blocks of {report.get('block', 1)} in one process"


def write_report(report, folder) -> dict:
    """benchmark.json, benchmark.md and benchmark.png in `folder`."""
    from .fsutil import write_report_files

    cpu = report["cpu"]
    lines = ["# Benchmark", "", f"CPU: {cpu['model']} ({cpu['machine']}, {cpu['cores']} cores; "
             f"{', '.join(cpu['features']) or 'no SIMD flags read'}); batch {report['batch']}, "
             f"{report['runs']} timed runs per model after {report['warmup']} warm-up, threads "
             f"{report['threads'] or 'runtime default'}; {report['timing']}.", "",
             "| model | input | ran | p50 ms | p90 ms | p99 ms | FPS | memory MB | speed-up vs first "
             f"{'[95% interval] ' if has_intervals(report) else ''}| "
             f"{spread_title(report)} |", "|---" * 10 + "|"]
    for e in report["models"]:
        lines.append(f"| {e['name']} | {input_size(e)} | {e['ran']} | {e['p50_ms']:.1f} | {e['p90_ms']:.1f} | "
                     f"{e['p99_ms']:.1f} | {e['fps']:.1f} | {e['memory_mb']:.0f} | "
                     f"{speedup_text(e['speedup_vs_first'], e.get('speedup_vs_first_interval'))} | {spread(e)} |")
    if report.get("sizes_differ"):
        lines += ["", f"**Note:** {report['sizes_differ']}."]
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
    ax.set_yticks(y, [f"{e['name']}\n[{input_size(e)}, {e['ran']}]" for e in models], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"latency p50 ms (whisker: p90), {protocol(report)}")
    ax.set_title(f"{report['cpu']['model']}: {', '.join(report['cpu']['features'])}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
