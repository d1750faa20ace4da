"""onnxruntime's u8s8 INT8 with and without the activations between quantized convolutions in uint8.

    python benchmarks/u8s8_activations.py [--weights shapes] [--policies default all] [--test 1500] [--runs 40]
        [--work runs/u8s8_act] [--out docs/u8s8_activations]

Two u8s8 files per policy from the same weights (post-training INT8 of --weights, or a QAT checkpoint's own
weights and ranges when --weights is one):
- `layers`: onnxruntime's quantizer on the policy's Conv/MatMul/Gemm layers only (the form before 2026-12-02);
  each conv output is dequantized for a float ReLU, residual Add, pool, SiLU, Resize or Concat and quantized
  again for the next conv.
- `layers + activations`: those operations too, where they sit between quantized convolutions
  (export/int8.py activations_between_convs): onnxruntime runs them as QLinearAdd/Mul/Sigmoid/Concat/
  AveragePool, folds the ReLUs into the conv before them, runs MaxPool and Resize on uint8.

Accuracy: AP on --test generated images (a seed no model saw) at the model's size, each file against the FP32
PyTorch model and the two forms against each other, with paired bootstrap intervals (apstats). Speed: p50 at
--imgsz (640), round-robin in one process (rtdetr_edge.benchmark), beside onnxruntime FP32. Writes OUT.md and
OUT.json; prints the CPU's features.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent
FORMS = {"layers": False, "layers + activations": True}


def export_pair(weights, policy, imgsz, calib, work) -> dict:
    """{form: bundle} for one policy at one size, cached under `work`."""
    import rtdetr_edge.export.int8 as int8
    from rtdetr_edge.export import export

    out = {}
    for form, activations in FORMS.items():
        path = Path(work) / f"u8s8_{Path(policy).stem}_{'act' if activations else 'layers'}_{imgsz}"
        if not (path / "manifest.json").is_file():
            int8.U8S8_ACTIVATIONS = activations
            try:
                t0 = time.time()
                export(weights, "onnx", imgsz=imgsz, out=path, force=True, precision="int8", int8_form="u8s8",
                       calib=calib, policy=policy, raw_twin=False)
                print(f"exported {path.name} in {time.time() - t0:.0f} s", flush=True)
            finally:
                int8.U8S8_ACTIVATIONS = True
        out[form] = path
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="shapes")
    ap.add_argument("--policies", nargs="+", default=["default", "all"])
    ap.add_argument("--calib", default="shapes-64")
    ap.add_argument("--test", type=int, default=1500, help="test images (generated, seed 1007)")
    ap.add_argument("--imgsz", type=int, default=640, help="the size timed")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--resamples", type=int, default=300)
    ap.add_argument("--work", default="runs/u8s8_act")
    ap.add_argument("--out", default=str(ROOT / "docs" / "u8s8_activations"))
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    from equal_schedule import Bootstrap, evaluate_all
    from int8_profile import cached_export

    from rtdetr_edge.benchmark import benchmark
    from rtdetr_edge.data.synth import generate
    from rtdetr_edge.export.int8 import activations_between_convs  # noqa: F401  (the rule measured here)
    from rtdetr_edge.runtime.base import load_runtime
    from rtdetr_edge.runtime.pytorch import TorchRuntime
    from rtdetr_edge.sysinfo import cpu_info, cpu_line
    from rtdetr_edge.zoo import resolve_weights

    cpu = cpu_info()
    print(cpu_line(cpu), flush=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    torch_rt = TorchRuntime(str(resolve_weights(args.weights)))
    size = torch_rt.imgsz[0]
    test = work / f"test{size}"
    if not test.is_dir():
        generate(test, 0, args.test, size, seed=1007)
    native = {p: export_pair(args.weights, p, size, args.calib, work) for p in args.policies}
    models = {"fp32 torch": lambda: TorchRuntime(str(resolve_weights(args.weights)))}
    for p, pair in native.items():
        for form, path in pair.items():
            models[f"{p} {form}"] = lambda path=path: load_runtime(path)
    ev = evaluate_all(models, test, work, args.test)
    boot = Bootstrap(ev["fp32 torch"]["matches"].n_images, args.resamples)

    timed = {"onnxruntime FP32": cached_export(work, "onnx_fp32", args.weights, "onnx", args.imgsz)}
    for p in args.policies:
        for form, path in export_pair(args.weights, p, args.imgsz, args.calib, work).items():
            timed[f"{p} {form}"] = path
    report = benchmark([str(v) for v in timed.values()], runs=args.runs, warmup=3)
    p50 = {label: e["p50_ms"] for label, e in zip(timed, report["models"])}

    rows = []
    for p in args.policies:
        for form in FORMS:
            name = f"{p} {form}"
            facts = json.loads((native[p][form] / "manifest.json").read_text())["converter"]
            rows.append({"policy": p, "form": form, "AP": ev[name]["AP"], "p50_ms": p50[name],
                         "vs_fp32_speed": p50["onnxruntime FP32"] / p50[name],
                         "activations_quantized": facts.get("activations_quantized", 0),
                         "qdq": facts.get("qdq"),
                         "vs_fp32": boot.compare(ev, "fp32 torch", name, 0.3),
                         **({"vs_layers": boot.compare(ev, f"{p} layers", name, None)} if form != "layers" else {})})
    result = {"cpu": cpu, "date": time.strftime("%Y-%m-%d"), "args": vars(args), "fp32_AP": ev["fp32 torch"]["AP"],
              "fp32_p50_ms": p50["onnxruntime FP32"], "rows": rows, "benchmark": report}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str))
    out.with_suffix(".md").write_text(markdown(args, result))
    print(out.with_suffix(".md").read_text())


def markdown(args, r) -> str:
    cpu = r["cpu"]
    lines = ["# onnxruntime u8s8: the activations between convolutions in uint8", "",
             f"`python benchmarks/u8s8_activations.py --weights {args.weights} --policies {' '.join(args.policies)} "
             f"--test {args.test} --runs {args.runs}` on {cpu.get('model')} ({', '.join(cpu.get('features', []))}), "
             f"{r['date']}. INT8 = post-training INT8 of `{args.weights}` (calibration {args.calib}); AP on "
             f"{args.test} generated test images at the model's size; p50 at {args.imgsz}x{args.imgsz}, batch 1, "
             f"{args.runs} rounds round-robin in one process. AP drops in points with 95% paired bootstrap "
             "intervals; positive = worse.", "",
             f"onnxruntime FP32: p50 {r['fp32_p50_ms']:.1f} ms. FP32 PyTorch AP: {r['fp32_AP']:.4f}.", "",
             "| policy | u8s8 form | activations in uint8 | AP | drop vs FP32 [95%] | drop vs `layers` [95%] | "
             "p50 ms | speed vs FP32 |", "|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        v, w = row["vs_fp32"], row.get("vs_layers")
        lines.append(f"| {row['policy']} | {row['form']} | {row['activations_quantized']} | {row['AP']:.4f} | "
                     f"{v['drop']:+.2f} [{v['lo']:+.2f}, {v['hi']:+.2f}] ({v['gate']}) | "
                     + (f"{w['drop']:+.2f} [{w['lo']:+.2f}, {w['hi']:+.2f}]" if w else "-")
                     + f" | {row['p50_ms']:.1f} | {row['vs_fp32_speed']:.2f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
