"""Median latency of the exported rtdetrv2_r18vd at 640 per backend and precision, side by side with
PyTorch eager in one run, printed as ratios (not part of CI).

    python benchmarks/latency.py                       # random weights, 640x640, batch 1
    python benchmarks/latency.py --weights W --imgsz 480x640 --formats onnx,openvino

Reference measured on an AVX512-BF16 machine with the authors' export path (deploy + torch.onnx,
opset 16): PyTorch eager 260 ms, onnxruntime FP32 147 ms, OpenVINO f32 147 ms, OpenVINO default
(bf16) 78 ms. CPUs differ, so this script also times that export path itself ("authors' path" rows:
the same model, deploy() + plain torch.onnx opset 16, no simplifier) in the same run. Timings on
shared machines are noisy: compare rows of one run.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rtdetr_edge import build_model, save_checkpoint
from rtdetr_edge.export import export
from rtdetr_edge.model.variants import parse_imgsz
from rtdetr_edge.runtime import load_runtime
from rtdetr_edge.runtime.pytorch import TorchRuntime


def interleaved_ms(fns, warmup, runs):
    """Median and best ms of each function, timed round-robin so that load drift on a shared machine
    hits every backend alike (sequential blocks drifted by 30% between backends here)."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(runs):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[i].append((time.perf_counter() - t) * 1000)
    return [(statistics.median(t), min(t)) for t in times]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="checkpoint (default: random rtdetrv2_r18vd)")
    ap.add_argument("--imgsz", default="640")
    ap.add_argument("--formats", default="onnx,openvino,tflite")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--sampling", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    size = parse_imgsz(args.imgsz)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = args.weights
        if not weights:
            torch.manual_seed(0)
            weights = tmp / "r18.pt"
            save_checkpoint(build_model("rtdetrv2_r18vd", imgsz=size), weights)
        x = np.random.default_rng(0).random((1, 3, *size), dtype=np.float32)
        sizes = np.array([[size[1], size[0]]])
        rows = []  # (backend, precision, sampling, runtime)
        rows.append(("pytorch eager", "fp32", "grid_sample", TorchRuntime(weights, imgsz=size)))
        plan = []
        for fmt in [f.strip() for f in args.formats.split(",") if f.strip()]:
            plan.append((fmt, "fp32"))
            if fmt in ("openvino", "tflite"):
                plan.append((fmt, "fp16"))
        for fmt, precision in plan:
            t = time.time()
            bundle = export(weights, fmt, precision=precision, imgsz=size, sampling=args.sampling, out=tmp / f"{fmt}_{precision}")
            print(f"exported {fmt} {precision} in {time.time() - t:.0f} s", flush=True)
            runtimes = [(precision, load_runtime(bundle))]
            if fmt == "openvino" and precision == "fp32":
                runtimes.append(("bf16 hint", load_runtime(bundle, precision_hint="bf16")))
            for label, rt in runtimes:
                effective = getattr(rt, "effective_precision", "")
                if "'" in effective:  # OpenVINO's "<Type: 'float32'>" -> float32
                    effective = effective.split("'")[1]
                rows.append((rt.backend, label + (f" (runs {effective})" if effective else ""), json_sampling(bundle),
                             rt))
        if "onnx" in args.formats:
            # the authors' export path on this machine: deploy() + plain torch.onnx (opset 16), no simplifier
            from rtdetr_edge.model.checkpoint import load_model
            from rtdetr_edge.model.postprocess import DeployModel

            model = load_model(weights, imgsz=size).deploy()
            path = tmp / "authors_path.onnx"
            with torch.no_grad():
                torch.onnx.export(DeployModel(model).eval(), (torch.from_numpy(x), torch.from_numpy(sizes)), str(path),
                                  input_names=["images", "orig_target_sizes"],
                                  output_names=["labels", "boxes", "scores"], opset_version=16, dynamo=False)
            for backend, opts in (("onnxruntime", {}), ("openvino", {"precision_hint": "f32"})):
                rows.append((backend, "fp32 authors' path", "grid_sample", load_runtime(path, backend=backend, **opts)))
        print("timing (round-robin)...", flush=True)
        stats = interleaved_ms([lambda rt=r[3]: rt.infer(x, sizes) for r in rows], args.warmup, args.runs)
        rows = [(*r[:3], *st) for r, st in zip(rows, stats)]
        base = rows[0][3]
        print(f"\nrtdetrv2_r18vd {size[0]}x{size[1]}, batch 1, {torch.get_num_threads()} threads, "
              f"median of {args.runs} runs")
        print(f"{'backend':<16}{'precision':<28}{'sampling':<13}{'median ms':>10}{'best ms':>9}{'vs eager':>10}")
        for backend, precision, sampling, med, best in rows:
            print(f"{backend:<16}{precision:<28}{sampling:<13}{med:>10.1f}{best:>9.1f}{base / med:>9.2f}x")


def json_sampling(bundle):
    import json
    return json.loads((Path(bundle) / "manifest.json").read_text())["sampling"]


if __name__ == "__main__":
    main()
