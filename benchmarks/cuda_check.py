"""The CUDA paths no CPU run exercises, in one script with one JSON report -- ready for the day a GPU is lent.

    python benchmarks/cuda_check.py --out cuda_check.json                 # on a machine with CUDA
    python benchmarks/cuda_check.py --device cpu --imgsz 64 --steps 3     # the CPU-side parts (a test runs this)

1. Training steps with AMP (float16 autocast + GradScaler on CUDA; plain FP32 on CPU): the loss falls over
   a few steps on one fixed batch, and no gradient is non-finite.
2. FP16 against FP32 on the same inputs, per module (forward hooks): the largest activation each module
   produces in FP32 (over 65504, FP16 overflows there, as a TensorRT FP16 engine would) and, on CUDA, the
   largest deviation of the same module run in FP16. On CPU only the FP32 ranges are measured.
3. Latency of the deployed model (post-processing included) on CUDA in FP32, FP16 and bf16, eager and
   replayed as a CUDA graph. Skipped on CPU, and said so in the report.

The model is rtdetrv2_r18vd with perturbed weights (or --weights). Nothing is downloaded.
"""

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

FP16_MAX = 65504.0


def _model(weights, imgsz, device):
    from rtdetr_edge import build_model, load_model

    if weights:
        return load_model(weights, imgsz=imgsz).to(device)
    torch.manual_seed(0)
    model = build_model("rtdetrv2_r18vd", num_classes=6, imgsz=imgsz)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    return model.to(device)


def _batch(imgsz, device, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, imgsz, imgsz, generator=g)
    targets = []
    for _ in range(n):
        k = 3
        centre = torch.rand(k, 2, generator=g) * 0.6 + 0.2
        size = torch.rand(k, 2, generator=g) * 0.2 + 0.1
        targets.append({"labels": torch.randint(0, 6, (k,), generator=g).to(device),
                        "boxes": torch.cat([centre, size], 1).to(device)})
    return images.to(device), targets


def train_steps(model, imgsz, device, steps) -> dict:
    """A few AdamW steps with AMP on one batch: the loss must fall and every gradient stay finite."""
    from rtdetr_edge.train.criterion import RTDETRCriterion

    model.train()
    criterion = RTDETRCriterion(model.num_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    images, targets = _batch(imgsz, device)
    losses, nonfinite = [], []
    for step in range(steps):
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            outputs = model(images, targets)
        with torch.autocast(device.type, enabled=False):
            loss = sum(criterion(outputs, targets).values())
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        nonfinite += [(step, n) for n in bad]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        scaler.step(opt)
        scaler.update()
        losses.append(float(loss.detach()))
    return {"amp": amp, "steps": steps, "losses": losses, "loss_fell": losses[-1] < losses[0],
            "nonfinite_gradients": [f"step {s}: {n}" for s, n in nonfinite[:20]],
            "ok": losses[-1] < losses[0] and not nonfinite and all(math.isfinite(v) for v in losses)}


def _module_outputs(model, x) -> dict:
    """Every leaf-ish module's output (first tensor) on input x, by module name."""
    out, hooks = {}, []

    def hook(name):
        def fn(module, args, output):
            t = output[0] if isinstance(output, (tuple, list)) else output
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                out[name] = t.detach().float()
        return fn

    for name, m in model.named_modules():
        if name and not list(m.children()):
            hooks.append(m.register_forward_hook(hook(name)))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return out


def fp16_ranges(model, imgsz, device, top=15) -> dict:
    """FP32 activation ranges per module (over FP16's 65504: overflow in an FP16 engine) and, on CUDA, the
    deviation of the FP16 model per module."""
    model = model.eval().deploy() if hasattr(model, "deploy") else model.eval()
    x, _ = _batch(imgsz, device, n=1, seed=1)
    fp32 = _module_outputs(model, x)
    ranges = sorted(((name, float(t.abs().max())) for name, t in fp32.items()), key=lambda r: -r[1])
    report = {"modules": len(fp32), "largest_fp32_activations": [{"module": n, "max_abs": v} for n, v in ranges[:top]],
              "over_fp16_max": [n for n, v in ranges if v > FP16_MAX]}
    if device.type == "cuda":
        half = _module_outputs(model.half(), x.half())
        model.float()
        dev = sorted(((n, float((fp32[n] - half[n]).abs().max() / max(fp32[n].abs().max(), 1e-6)))
                      for n in fp32 if n in half and half[n].shape == fp32[n].shape), key=lambda r: -r[1])
        report["largest_fp16_relative_deviation"] = [{"module": n, "relative": v} for n, v in dev[:top]]
        report["nonfinite_in_fp16"] = [n for n in half if not torch.isfinite(half[n]).all()]
    else:
        report["fp16_deviation"] = "skipped: CPU (FP16 convolutions are a CUDA measurement)"
    report["ok"] = not report["over_fp16_max"] and not report.get("nonfinite_in_fp16")
    return report


def latency(model, imgsz, device, runs=50) -> dict:
    """The deployed model (top-k post-processing included), eager and as a CUDA graph, per dtype."""
    if device.type != "cuda":
        return {"skipped": "CPU: CUDA graphs and FP16/bf16 kernels are measured on a GPU"}
    from rtdetr_edge.model.postprocess import DeployModel

    out = {}
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        m = DeployModel(model.eval()).to(device=device, dtype=dtype).eval()
        x = torch.rand(1, 3, imgsz, imgsz, device=device, dtype=dtype)
        sizes = torch.tensor([[imgsz, imgsz]], device=device)
        with torch.no_grad():
            for _ in range(5):
                m(x, sizes)
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(runs):
                m(x, sizes)
            torch.cuda.synchronize()
            eager = (time.perf_counter() - t) * 1000 / runs
            graph_ms = None
            try:
                g = torch.cuda.CUDAGraph()
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    for _ in range(3):
                        m(x, sizes)
                torch.cuda.current_stream().wait_stream(stream)
                with torch.cuda.graph(g):
                    m(x, sizes)
                torch.cuda.synchronize()
                t = time.perf_counter()
                for _ in range(runs):
                    g.replay()
                torch.cuda.synchronize()
                graph_ms = (time.perf_counter() - t) * 1000 / runs
            except Exception as e:  # a capture that fails is a finding, not a crash of the check
                graph_ms = f"capture failed: {type(e).__name__}: {str(e)[:200]}"
        out[str(dtype).replace("torch.", "")] = {"eager_ms": eager, "cuda_graph_ms": graph_ms}
    return out


def run(device="cuda", imgsz=640, steps=10, weights=None) -> dict:
    device = torch.device(device if device != "cuda" or torch.cuda.is_available() else "cpu")
    report = {"device": str(device), "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
              "torch": torch.__version__, "python": platform.python_version(), "imgsz": imgsz}
    report["train_amp"] = train_steps(_model(weights, imgsz, device), imgsz, device, steps)
    report["fp16_vs_fp32"] = fp16_ranges(_model(weights, imgsz, device), imgsz, device)
    report["latency"] = latency(_model(weights, imgsz, device).eval().deploy(), imgsz, device)
    report["ok"] = report["train_amp"]["ok"] and report["fp16_vs_fp32"]["ok"]
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda (falls back to cpu when there is none) or cpu")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--out", default="cuda_check.json")
    args = ap.parse_args(argv)
    report = run(args.device, args.imgsz, args.steps, args.weights)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("device", "gpu", "ok")}), "->", args.out)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
