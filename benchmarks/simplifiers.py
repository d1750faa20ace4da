"""onnxslim against onnxsim on our exported graphs: nodes removed, outputs unchanged, onnxruntime latency.

For each (opset, sampling) the TensorRT recipes use -- 17/grid_sample (TensorRT 10), 16/grid_sample
(TensorRT 8.5), 13/gather (TensorRT 8.2) -- the graph is exported unsimplified, then simplified by each
tool; every variant runs on onnxruntime with all graph optimisations off (so the file's own structure is
timed, as TensorRT's parser sees it) and on the default level, round-robin in one process.

    python benchmarks/simplifiers.py [--weights W] [--imgsz 640] [--runs 10]

No TensorRT here: the engine-side effect is not measured (see the README of a Jetson bundle to build one).
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=None, help="checkpoint (default: randomized r18vd)")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--json", default="simplifiers.json")
    args = ap.parse_args()

    import onnx
    import onnxruntime as ort
    import torch

    from rtdetr_edge.export.check import graph_facts
    from rtdetr_edge.export.onnx import _simplified, export_onnx
    from rtdetr_edge.model.checkpoint import load_model
    from rtdetr_edge.model.postprocess import DeployModel
    from rtdetr_edge.sysinfo import cpu_info

    torch.set_num_threads(2)
    print("CPU:", cpu_info())
    rows = []
    tmp = Path(tempfile.mkdtemp())
    for opset, sampling in ((17, "grid_sample"), (16, "grid_sample"), (13, "gather")):
        if args.weights:
            model = load_model(args.weights, imgsz=args.imgsz, sampling=sampling).deploy().eval()
        else:
            sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
            from hf_reference import randomize_

            from rtdetr_edge import build_model

            torch.manual_seed(0)
            model = randomize_(build_model("rtdetrv2_r18vd", num_classes=80, imgsz=args.imgsz,
                                           sampling=sampling)).deploy().eval()
        h, w = model.imgsz
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
        sizes = torch.tensor([[w, h]])
        base = tmp / f"o{opset}.onnx"
        export_onnx(DeployModel(model).eval(), base, (x, sizes), simplifier="none", opset=opset)
        files = {"none": base}
        for tool in ("onnxslim", "onnxsim"):
            start = time.time()
            out, _ = _simplified(onnx.load(str(base)), tool)
            path = tmp / f"o{opset}_{tool}.onnx"
            onnx.save(out, str(path))
            files[tool] = (path, time.time() - start)
        feeds = {"images": x.numpy(), "orig_target_sizes": sizes.numpy()}
        sessions = {}
        for tool, entry in files.items():
            path = entry if tool == "none" else entry[0]
            for level in ("off", "default"):
                o = ort.SessionOptions()
                o.intra_op_num_threads = 2
                if level == "off":
                    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                sessions[(tool, level)] = ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])
        ref = sessions[("none", "off")].run(None, feeds)
        times = {k: [] for k in sessions}
        for _ in range(args.runs):  # round-robin: machine load hits every variant alike
            for k, s in sessions.items():
                t0 = time.perf_counter()
                s.run(None, feeds)
                times[k].append((time.perf_counter() - t0) * 1e3)
        for tool, entry in files.items():
            path = entry if tool == "none" else entry[0]
            out = sessions[(tool, "off")].run(None, feeds)
            diff = max(float(np.abs(a.astype(np.float64) - b).max()) for a, b in zip(out, ref))
            facts = graph_facts(path)
            rows.append({"opset": opset, "sampling": sampling, "simplifier": tool, "nodes": facts["nodes"],
                         "max_abs_diff": diff, "simplify_s": None if tool == "none" else round(entry[1], 1),
                         "ort_noopt_ms": statistics.median(times[(tool, "off")]),
                         "ort_default_ms": statistics.median(times[(tool, "default")]),
                         "ops": facts["ops"]})
            r = rows[-1]
            print(f"opset {opset:2d} {sampling:11s} {tool:8s} nodes {r['nodes']:5d}  diff {diff:.1e}  "
                  f"ORT no-opt {r['ort_noopt_ms']:7.1f} ms  default {r['ort_default_ms']:7.1f} ms  "
                  f"simplify {r['simplify_s'] if r['simplify_s'] is not None else '-'} s", flush=True)
    Path(args.json).write_text(json.dumps({"cpu": cpu_info(), "imgsz": args.imgsz, "rows": rows}, indent=2))
    print("written", args.json)


if __name__ == "__main__":
    main()
