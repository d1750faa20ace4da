"""Where INT8 time goes: per-operator time of FP32 and INT8 on onnxruntime (its profiler) and OpenVINO (its
per-layer performance counters), grouped by model part, side by side in one process; optionally beside the
authors' own ONNX export (their code, --repo).

    python benchmarks/int8_profile.py [--weights shapes] [--imgsz 640] [--runs 10] [--threads 2] [--policies default all]
        [--repo /path/to/RT-DETR/rtdetrv2_pytorch] [--out docs/int8_profile]

INT8 here is post-training INT8 of the weights with each policy given (default: the shipped default policy):
a QAT checkpoint has the same graph, so the same speed. Writes OUT.md, OUT.json and OUT.png. Times are per
inference (batch 1), averaged over --runs after one warm-up; the CPU's features are printed. Compare the
shares and ratios, not absolute times, across machines.
"""

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parent.parent
QDQ = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "FakeQuantize", "FakeConvert"}
PARTS = ("backbone", "encoder", "query selection", "decoder sampling", "decoder attention/FFN", "decoder heads",
         "Q/DQ", "post-processing", "other")


# the convolutions and matrix products that run on 8-bit data: onnxruntime's operators, OpenVINO's layer types
# (counted when their kernel is an I8/U8 one)
ORT_INT8_LAYERS = {"QLinearConv", "QGemm", "QLinearMatMul", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul"}
OV_LAYERS = {"Convolution", "GroupConvolution", "FullyConnected", "FullyConnectedQuantizedLegacy",
             "FullyConnectedQuantized", "MatMul"}


def int8_layer_ms(ops: dict) -> float:
    """ms per run in the 8-bit convolutions and matrix products (`ops`: a profile's "ops")."""
    total = 0.0
    for key, ms in ops.items():
        op, _, kernel = key.partition(" (")
        if op in ORT_INT8_LAYERS or (op in OV_LAYERS and any(t in kernel for t in ("I8", "i8", "U8", "u8"))):
            total += ms
    return total


def part_of(name: str, op: str) -> str:
    """A node's model part, from the module path torch.onnx writes into node names (OpenVINO keeps them)."""
    n = name.lower()
    if op in QDQ:
        return "Q/DQ"
    if "postprocessor" in n:
        return "post-processing"
    if "backbone" in n:
        return "backbone"
    if "encoder" in n and "decoder" not in n:
        return "encoder"
    if any(k in n for k in ("enc_output", "enc_score_head", "enc_bbox_head", "topk", "anchors", "valid_mask")):
        return "query selection"
    if "decoder" in n:
        if any(k in n for k in ("sampling", "cross_attn", "gridsample", "grid_sample")) or op in ("GridSample",):
            return "decoder sampling"
        if any(k in n for k in ("dec_score_head", "dec_bbox_head", "query_pos_head")):
            return "decoder heads"
        return "decoder attention/FFN"
    return "other"


def ort_profile(path, feeds, threads, runs):
    """ms per run by part and by operator type (onnxruntime's own profile of its optimised graph)."""
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.enable_profiling = True
    o.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "prof")
    s = ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])
    s.run(None, feeds)  # warm-up, left out below
    start = time.perf_counter()
    for _ in range(runs):
        s.run(None, feeds)
    wall = (time.perf_counter() - start) * 1e3 / runs
    events = json.loads(Path(s.end_profiling()).read_text())
    runs_seen = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"]
    cutoff = runs_seen[0]["ts"] + runs_seen[0]["dur"] if runs_seen else 0  # after the warm-up
    parts, ops = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= cutoff:
            name, op = e["name"][:-len("_kernel_time")], e["args"]["op_name"]
            parts[part_of(name, op)] += e["dur"] / 1000 / runs
            ops[op] += e["dur"] / 1000 / runs
    return {"wall_ms": wall, "parts": dict(parts), "ops": dict(ops)}


def ov_profile(path, x, sizes, threads, runs, precision=None):
    """ms per run by part and by executed layer type (OpenVINO's performance counters)."""
    import openvino as ov

    core = ov.Core()
    config = {"PERF_COUNT": "YES", "INFERENCE_NUM_THREADS": threads}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    req = compiled.create_infer_request()
    inputs = {compiled.inputs[0]: x, compiled.inputs[1]: sizes}
    req.infer(inputs)
    parts, ops = collections.Counter(), collections.Counter()
    start = time.perf_counter()
    for _ in range(runs):
        req.infer(inputs)
        for p in req.get_profiling_info():
            if p.status != p.Status.EXECUTED:
                continue
            ms = p.real_time.total_seconds() * 1e3 / runs
            parts[part_of(p.node_name, p.node_type)] += ms
            ops[f"{p.node_type} ({p.exec_type})"] += ms
    wall = (time.perf_counter() - start) * 1e3 / runs
    return {"wall_ms": wall, "parts": dict(parts), "ops": dict(ops),
            "ran": compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
            if hasattr(compiled.get_property("INFERENCE_PRECISION_HINT"), "to_string")
            else str(compiled.get_property("INFERENCE_PRECISION_HINT"))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="shapes")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calib", default="shapes-64")
    ap.add_argument("--policies", nargs="+", default=["default"], help="INT8 models per policy (default, all, a file)")
    ap.add_argument("--repo", default=None, help="the authors' rtdetrv2_pytorch folder: profile their export too")
    ap.add_argument("--work", default=None, help="keep the exports here (default: a temporary folder)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "int8_profile"))
    args = ap.parse_args()

    import torch

    from rtdetr_edge.sysinfo import cpu_info

    torch.set_num_threads(args.threads)
    tmp = Path(args.work or tempfile.mkdtemp())

    def bundle(name, fmt, **extra):
        return cached_export(tmp, name, args.weights, fmt, args.imgsz, **extra)

    bundles = {"onnxruntime FP32": (bundle("onnx_fp32", "onnx"), "model.onnx"),
               "OpenVINO f32": (bundle("openvino_fp32", "openvino"), "model.xml")}
    for p in args.policies:
        int8 = {"precision": "int8", "calib": args.calib, "policy": p}
        tag, key = ("" if args.policies == ["default"] else f", policy {p}"), Path(p).stem
        bundles[f"onnxruntime INT8 u8s8{tag}"] = (bundle(f"onnx_u8s8_{key}", "onnx", int8_form="u8s8", **int8),
                                                  "model.onnx")
        if p == args.policies[0]:  # the form onnxruntime does not run fast (docs/int8.md), for reference once
            bundles[f"onnxruntime INT8 s8s8 (Q/DQ){tag}"] = (bundle(f"onnx_s8s8_{key}", "onnx", int8_form="s8s8",
                                                                   **int8), "model.onnx")
        bundles[f"OpenVINO INT8 s8s8{tag}"] = (bundle(f"openvino_s8s8_{key}", "openvino", **int8), "model.xml")
    if args.repo:
        sys.path.insert(0, str(Path(__file__).parent))
        theirs = cached_authors_onnx(args.repo, args.weights, args.imgsz, tmp)
        bundles = {"authors' export, onnxruntime FP32": (theirs.parent, theirs.name), **bundles}
    rng = np.random.default_rng(0)
    x = rng.random((1, 3, args.imgsz, args.imgsz), dtype=np.float32)
    sizes = np.array([[args.imgsz, args.imgsz]], dtype=np.int64)
    rows = {}
    for name, (folder, file) in bundles.items():
        path = Path(folder) / file
        if file.endswith(".onnx"):
            rows[name] = ort_profile(path, {"images": x, "orig_target_sizes": sizes}, args.threads, args.runs)
        else:
            rows[name] = ov_profile(path, x, sizes, args.threads, args.runs, precision="f32")
        print(f"{name}: {rows[name]['wall_ms']:.1f} ms/run", flush=True)
    report = {"cpu": cpu_info(), "threads": args.threads, "imgsz": args.imgsz, "runs": args.runs,
              "weights": args.weights, "policies": args.policies, "models": rows, "date": time.strftime("%Y-%m-%d")}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(markdown(report, args))
    chart(report, out.with_suffix(".png"))
    print(out.with_suffix(".md").read_text())


def cached_export(work, name, weights, fmt, imgsz, **extra) -> Path:
    """WORK/NAME_IMGSZ, exported once (benchmarks/speed_map.py names its exports the same: one --work serves
    both)."""
    from rtdetr_edge.export import export

    path = Path(work) / f"{name}_{imgsz}"
    if not (path / "manifest.json").is_file():
        t0 = time.time()
        export(weights, fmt, imgsz=imgsz, out=path, force=True, **extra)
        print(f"exported {path.name} in {time.time() - t0:.0f} s", flush=True)
    return path


def cached_authors_onnx(repo, weights, imgsz, work) -> Path:
    """WORK/theirs_IMGSZ.onnx, the authors' export made once."""
    theirs = Path(work) / f"theirs_{imgsz}.onnx"
    if not theirs.is_file():
        authors_onnx(repo, weights, imgsz, Path(work)).rename(theirs)
    return theirs


def authors_onnx(repo, weights, imgsz, tmp) -> Path:
    """The authors' export of the same weights (their code, their export settings: opset 16)."""
    import torch
    from authors_ort import export_authors_onnx

    from rtdetr_edge.zoo import resolve_weights

    state = torch.load(resolve_weights(weights), map_location="cpu", weights_only=True)["model"]
    return export_authors_onnx(repo, {k: v.float() for k, v in state.items()}, imgsz, tmp / "theirs.onnx",
                               dynamic=False)


def markdown(report, args) -> str:
    cpu = report["cpu"]
    names = list(report["models"])
    lines = ["# Where INT8 time goes", "",
             f"`python benchmarks/int8_profile.py --weights {args.weights} --imgsz {args.imgsz} --runs {args.runs} "
             f"--threads {args.threads} --policies {' '.join(args.policies)}{' --repo ...' if args.repo else ''}` on {cpu.get('model')} "
             f"({', '.join(cpu.get('features', [])) or 'no SIMD flags read'}), {report['date']}. Batch 1; ms per "
             "inference by model part (the runtimes' own profilers: onnxruntime's per-node kernel times, "
             "OpenVINO's per-layer counters); INT8 = post-training INT8 with the policy named (the same graph as "
             "a QAT checkpoint of that policy).", "",
             "| part | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for part in PARTS:
        cells = []
        for n in names:
            m = report["models"][n]
            total = sum(m["parts"].values()) or 1
            v = m["parts"].get(part, 0.0)
            cells.append(f"{v:.1f} ({100 * v / total:.0f}%)")
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    lines.append("| **sum of layers** | " + " | ".join(f"{sum(report['models'][n]['parts'].values()):.1f}"
                                                    for n in names) + " |")
    lines.append("| wall time per run | " + " | ".join(f"{report['models'][n]['wall_ms']:.1f}" for n in names) + " |")
    int8 = {n: int8_layer_ms(report["models"][n]["ops"]) for n in names}
    lines.append("| 8-bit convolutions and matrix products | " + " | ".join(
        f"{int8[n]:.1f} ({100 * int8[n] / (sum(report['models'][n]['parts'].values()) or 1):.0f}%)" if int8[n] else "-"
        for n in names) + " |")
    base = next((n for n in names if n.startswith("authors'")), None)
    if base:
        wall = report["models"][base]["wall_ms"]
        lines.append("| bound: the authors' FP32 wall time / the 8-bit layers (the speed-up if everything else "
                     "took no time) | " + " | ".join(f"{wall / int8[n]:.1f}x" if int8[n] else "-" for n in names) + " |")
    lines += ["", "Largest operator types per model (ms per run):", ""]
    for n in names:
        ops = sorted(report["models"][n]["ops"].items(), key=lambda kv: -kv[1])[:8]
        lines.append(f"- {n}: " + ", ".join(f"{op} {ms:.1f}" for op, ms in ops))
    return "\n".join(lines) + "\n"


def chart(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["models"])
    fig, ax = plt.subplots(figsize=(10, 0.8 * len(names) + 1.5))
    left = np.zeros(len(names))
    for part in PARTS:
        values = np.array([report["models"][n]["parts"].get(part, 0.0) for n in names])
        if values.any():
            ax.barh(names, values, left=left, label=part)
            left += values
    ax.set_xlabel("ms per inference (sum of layer times)")
    ax.set_title(f"where the time goes, {report['imgsz']} px, {report['threads']} threads")
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
