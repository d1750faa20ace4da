"""Would int8 self-attention close OpenVINO's gap to 3.5x? A measurement, not an export option.

The policy `all` quantizes every Conv and Linear, but the self-attention's two matrix products (q x k^T and the
softmax output x v, in AIFI and in each decoder layer) read float inputs, so OpenVINO runs them in f32 Subgraphs
(0.3-0.5 ms each at 640, docs/int8_profile.md). This script takes the s8s8 file of `--policy all` (post-training
INT8 of --weights), calibrates those matmuls' inputs on the calibration list (max over the list: q, k and v
symmetric int8, the softmax output uint8 with scale 1/255), inserts QuantizeLinear/DequantizeLinear pairs before
them and converts both graphs to OpenVINO IR. It then times the two IRs beside the authors' FP32 export, each model
alone in fresh processes (rtdetr-edge benchmark --processes), and measures both against the FP32 PyTorch model on
--data (rtdetr-edge parity: AP drop with its paired interval and the 0.3-point gate).

    python benchmarks/attention_int8.py --theirs theirs_640.onnx --data TEST_DIR [--weights shapes]
        [--imgsz 640] [--processes 16] [--runs 80] [--work DIR] [--out docs/attention_int8]

QAT does not model these quantizers: a shipped form would need them in the fake-quant model (modelopt quantizers
on the matmul inputs) and in the u8s8 and TFLite forms too.
"""

import argparse
import collections
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parent.parent
_NOT_ATTENTION = ("_proj", "linear", "head", "sampling", "attention_weights")


def attention_matmuls(graph) -> list:
    """The self-attention's two MatMuls per layer (q x k^T, softmax x v): the ones not made from a Linear."""
    return [n for n in graph.node if n.op_type == "MatMul" and n.name.endswith(("/MatMul", "/MatMul_1"))
            and "/layers." in n.name and not any(x in n.name for x in _NOT_ATTENTION)]


def calibrate(onnx_path, calib, imgsz) -> dict:
    """Max |value| of every attention-matmul input over the calibration list (onnxruntime, the float graph's
    intermediate outputs)."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    model = onnx.load(str(onnx_path))
    tensors = sorted({t for n in attention_matmuls(model.graph) for t in n.input})
    model.graph.output.extend([helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in tensors])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    amax = collections.defaultdict(float)
    for x in calib.batches((imgsz, imgsz), batch=1):
        sizes = np.array([[imgsz, imgsz]], dtype=np.int64)
        for t, out in zip(tensors, session.run(tensors, {"images": x, "orig_target_sizes": sizes})):
            amax[t] = max(amax[t], float(np.abs(out).max()))
    return dict(amax)


def with_attention_qdq(onnx_path, amax, dst) -> int:
    """A copy of the graph with a Q/DQ pair before each attention-matmul input; returns the number of pairs."""
    import onnx
    from onnx import helper
    from onnx import numpy_helper as nh

    model = onnx.load(str(onnx_path))
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    targets = {n.name for n in attention_matmuls(graph)}
    nodes, k = [], 0
    for node in graph.node:
        if node.name in targets:
            for i, t in enumerate(node.input):
                k += 1
                probabilities = t in producer and producer[t].op_type == "Softmax"
                scale = 1 / 255 if probabilities else max(amax[t], 1e-6) / 127
                s = nh.from_array(np.array(scale, np.float32), f"attention_q{k}_scale")
                z = nh.from_array(np.array(0, np.uint8 if probabilities else np.int8), f"attention_q{k}_zero")
                graph.initializer.extend([s, z])
                nodes += [helper.make_node("QuantizeLinear", [t, s.name, z.name], [f"attention_q{k}"]),
                          helper.make_node("DequantizeLinear", [f"attention_q{k}", s.name, z.name], [f"attention_dq{k}"])]
                node.input[i] = f"attention_dq{k}"
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(dst))
    return k


def openvino_bundle(template, onnx_path, dst) -> Path:
    """An OpenVINO bundle at `dst`: `template`'s manifest and golden data, the IR converted from `onnx_path`."""
    import openvino as ov

    from rtdetr_edge.bundle import write_manifest

    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(template, dst)
    ov.save_model(ov.convert_model(str(onnx_path)), str(Path(dst) / "model.xml"))
    write_manifest(dst, json.loads((Path(dst) / "manifest.json").read_text()))
    return Path(dst)


def both(work, weights, imgsz, calib_name):
    """(the s8s8 `all` bundle as OpenVINO IR, the same with int8 attention, the amax per tensor) at `imgsz`."""
    sys.path.insert(0, str(Path(__file__).parent))
    from int8_profile import cached_export

    from rtdetr_edge.quant.calib import load_calib

    int8 = dict(precision="int8", int8_form="s8s8", calib=calib_name, policy="all")
    onnx_bundle = cached_export(work, "onnx_s8s8_all", weights, "onnx", imgsz, **int8)
    plain = cached_export(work, "openvino_s8s8_all", weights, "openvino", imgsz, **int8)
    amax = calibrate(onnx_bundle / "model.onnx", load_calib(calib_name), imgsz)
    qdq = Path(work) / f"attention_{imgsz}.onnx"
    pairs = with_attention_qdq(onnx_bundle / "model.onnx", amax, qdq)
    attention = openvino_bundle(plain, qdq, Path(work) / f"openvino_s8s8_all_attention_{imgsz}")
    return plain, attention, amax, pairs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="shapes")
    ap.add_argument("--imgsz", type=int, default=640, help="the size timed")
    ap.add_argument("--theirs", required=True, help="the authors' FP32 ONNX export at --imgsz (int8_profile/speed_map)")
    ap.add_argument("--data", required=True, help="COCO folder whose val split measures AP (the checkpoint's size)")
    ap.add_argument("--calib", default="shapes-64")
    ap.add_argument("--processes", type=int, default=16)
    ap.add_argument("--runs", type=int, default=80)
    ap.add_argument("--work", default=None)
    ap.add_argument("--out", default=str(ROOT / "docs" / "attention_int8"))
    args = ap.parse_args()

    import tempfile

    from rtdetr_edge.benchmark import benchmark, spread
    from rtdetr_edge.model.checkpoint import read_checkpoint
    from rtdetr_edge.parity import parity, write_report
    from rtdetr_edge.sysinfo import cpu_info, cpu_line
    from rtdetr_edge.zoo import resolve_weights

    cpu = cpu_info()
    print(cpu_line(cpu), flush=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="attention-int8-"))
    work.mkdir(parents=True, exist_ok=True)
    native = read_checkpoint(resolve_weights(args.weights))[1]["imgsz"][0]
    plain, attention, amax, pairs = both(work, args.weights, args.imgsz, args.calib)
    print(f"{pairs} Q/DQ pairs on the attention matmuls; amax {json.dumps({k: round(v, 3) for k, v in amax.items()})}",
          flush=True)
    speed = benchmark([args.theirs, str(plain), str(attention)], runs=args.runs, warmup=3, processes=args.processes)
    by = {e["model"]: e for e in speed["models"]}
    base = by[str(args.theirs)]["p50_ms"]
    rows = [{"model": label, "p50_ms": by[str(p)]["p50_ms"], "spread": spread(by[str(p)]),
             "vs_authors": base / by[str(p)]["p50_ms"], "ran": by[str(p)]["ran"]}
            for label, p in [("authors' export, onnxruntime FP32", args.theirs), ("OpenVINO INT8 `all`", plain),
                             ("OpenVINO INT8 `all`, int8 attention", attention)]]
    acc_plain, acc_attention = (both(work, args.weights, native, args.calib)[:2] if native != args.imgsz
                                else (plain, attention))
    report = parity([acc_plain, acc_attention], weights=args.weights, data=args.data)
    write_report(report, work / "parity")
    for row, a in zip(rows[1:], report["artifacts"]):
        m = a["metrics"]
        row.update(AP=m["AP"], AP50=m["AP50"], images=m["images"], drop=m["ap_drop"], interval=m["ap_drop_interval"],
                   gate=a["ap_gate"]["status"])
    result = {"cpu": cpu, "date": time.strftime("%Y-%m-%d"), "imgsz": args.imgsz, "accuracy_imgsz": native,
              "weights": args.weights, "calib": args.calib, "pairs": pairs, "amax": amax, "rows": rows,
              "timing": speed["timing"], "runs": speed["runs"]}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    lines = ["# int8 self-attention on OpenVINO (a measurement)", "",
             f"`python benchmarks/attention_int8.py --imgsz {args.imgsz} --processes {args.processes} --runs "
             f"{args.runs} --theirs ... --data ...` on {cpu.get('model')} ({', '.join(cpu.get('features', []))}), "
             f"{result['date']}. Speed at {args.imgsz}: {speed['timing']}. AP at {native} px on {rows[1]['images']} "
             f"images against the FP32 PyTorch model (paired 95% intervals). Post-training INT8 of `{args.weights}`, "
             f"policy `all`, calibration {args.calib}; {pairs} Q/DQ pairs on the self-attention matmuls' inputs.", "",
             "| model | ran | p50 ms | p50 per process | vs authors' ORT FP32 | AP | AP50 | drop vs FP32 [95%], points | gate (0.3) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = (f"{r['AP']:.4f} | {r['AP50']:.4f} | {100 * r['drop']:+.2f} [{100 * r['interval']['lo']:+.2f}, "
               f"{100 * r['interval']['hi']:+.2f}] | {r['gate']}" if "AP" in r else "- | - | - | -")
        lines.append(f"| {r['model']} | {r['ran']} | {r['p50_ms']:.1f} | {r['spread']} | {r['vs_authors']:.2f}x | {acc} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
