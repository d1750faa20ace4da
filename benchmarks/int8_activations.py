"""INT8 made by the runtimes' own quantizers (onnxruntime u8s8, TFLite static), with and without the weightless
operations between quantized convolutions in 8 bits.

    python benchmarks/int8_activations.py [--weights shapes] [--runtimes onnxruntime tflite]
        [--policies default all] [--test 1500] [--runs 40] [--work runs/int8_act] [--out docs/int8_activations]

Two files per runtime and policy from the same weights (post-training INT8 of --weights, or a QAT checkpoint's
own weights and ranges when --weights is one):
- `layers`: the quantizer on the policy's Conv/MatMul/Gemm (TFLite: CONV_2D/FULLY_CONNECTED) layers only
  (the forms before 2026-12-02): each conv output is dequantized for a float ReLU, residual Add, pool, SiLU,
  Resize or Concat and quantized again for the next conv.
- `layers + activations`: those operations too, where they sit between quantized convolutions
  (export/int8.py: activations_between_convs, tflite_activations_between_convs). onnxruntime runs them as
  QLinearAdd/Mul/Sigmoid/Concat/AveragePool, folds the ReLUs into the conv before them, runs MaxPool and Resize
  on uint8; XNNPACK runs TFLite's int8 ADD/MUL/LOGISTIC/CONCATENATION/PAD/pools/resizes.

Accuracy: AP on --test generated images (seed 1007, a seed no model saw) at the model's size, each file against
the FP32 PyTorch model and the two forms against each other, with paired bootstrap intervals (apstats).
Speed: p50 at --imgsz (640), round-robin in one process per runtime (rtdetr_edge.benchmark), beside that
runtime's FP32 file. Writes OUT.md and OUT.json; prints the CPU's features. Exports and evaluations are cached
under --work.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent
# runtime -> (format, INT8 form, the switch in rtdetr_edge.export.int8, the recipes' ΔAP limit in points)
RUNTIMES = {"onnxruntime": ("onnx", "u8s8", "U8S8_ACTIVATIONS", 0.3),
            "tflite": ("tflite", "static", "TFLITE_ACTIVATIONS", 1.0)}
FORMS = {"layers": False, "layers + activations": True}


def export_pair(runtime, weights, policy, imgsz, calib, work) -> dict:
    """{form: bundle} for one runtime and policy at one size, cached under `work`."""
    import rtdetr_edge.export.int8 as int8
    from rtdetr_edge.export import export

    fmt, form_name, switch, _ = RUNTIMES[runtime]
    out = {}
    for form, activations in FORMS.items():
        path = Path(work) / f"{fmt}_{form_name}_{Path(policy).stem}_{'act' if activations else 'layers'}_{imgsz}"
        if not (path / "manifest.json").is_file():
            setattr(int8, switch, activations)
            try:
                t0 = time.time()
                export(weights, fmt, imgsz=imgsz, out=path, force=True, precision="int8", int8_form=form_name,
                       calib=calib, policy=policy, raw_twin=False)
                print(f"exported {path.name} in {time.time() - t0:.0f} s", flush=True)
            finally:
                setattr(int8, switch, True)
        out[form] = path
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="shapes")
    ap.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=list(RUNTIMES))
    ap.add_argument("--policies", nargs="+", default=["default", "all"])
    ap.add_argument("--calib", default="shapes-64")
    ap.add_argument("--test", type=int, default=1500, help="test images (generated, seed 1007)")
    ap.add_argument("--imgsz", type=int, default=640, help="the size timed")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--resamples", type=int, default=300)
    ap.add_argument("--work", default="runs/int8_act")
    ap.add_argument("--out", default=str(ROOT / "docs" / "int8_activations"))
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    from equal_schedule import Bootstrap, ab_setup, evaluate_all
    from int8_profile import cached_export

    from rtdetr_edge.benchmark import benchmark
    from rtdetr_edge.runtime.base import load_runtime
    from rtdetr_edge.runtime.pytorch import TorchRuntime
    from rtdetr_edge.zoo import resolve_weights

    cpu, work, size, test = ab_setup(args)
    native = {(rt, p): export_pair(rt, args.weights, p, size, args.calib, work)
              for rt in args.runtimes for p in args.policies}
    models = {"fp32 torch": lambda: TorchRuntime(str(resolve_weights(args.weights)))}
    for (rt, p), pair in native.items():
        for form, path in pair.items():
            models[f"{rt} {p} {form}"] = lambda path=path: load_runtime(path)
    ev = evaluate_all(models, test, work, args.test)
    boot = Bootstrap(ev["fp32 torch"]["matches"].n_images, args.resamples)

    rows, fp32_ms = [], {}
    for rt in args.runtimes:
        fmt, _, _, limit = RUNTIMES[rt]
        timed = {"FP32": cached_export(work, f"{fmt}_fp32", args.weights, fmt, args.imgsz)}
        for p in args.policies:
            for form, path in export_pair(rt, args.weights, p, args.imgsz, args.calib, work).items():
                timed[f"{p} {form}"] = path
        report = benchmark([str(v) for v in timed.values()], runs=args.runs, warmup=3)
        p50 = {label: e["p50_ms"] for label, e in zip(timed, report["models"])}
        fp32_ms[rt] = p50["FP32"]
        for p in args.policies:
            for form in FORMS:
                name = f"{rt} {p} {form}"
                facts = json.loads((native[(rt, p)][form] / "manifest.json").read_text())["converter"]
                rows.append({"runtime": rt, "policy": p, "form": form, "AP": ev[name]["AP"], "p50_ms": p50[f"{p} {form}"],
                             "vs_fp32_speed": p50["FP32"] / p50[f"{p} {form}"],
                             "activations_quantized": facts.get("activations_quantized", 0),
                             "vs_fp32": boot.compare(ev, "fp32 torch", name, limit),
                             **({"vs_layers": boot.compare(ev, f"{rt} {p} layers", name, None)}
                                if form != "layers" else {})})
    result = {"cpu": cpu, "date": time.strftime("%Y-%m-%d"), "args": vars(args), "fp32_AP": ev["fp32 torch"]["AP"],
              "fp32_p50_ms": fp32_ms, "rows": rows}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str))
    out.with_suffix(".md").write_text(markdown(args, result))
    print(out.with_suffix(".md").read_text())


def markdown(args, r) -> str:
    cpu = r["cpu"]
    lines = ["# INT8 from the runtimes' quantizers: the activations between convolutions in 8 bits", "",
             f"`python benchmarks/int8_activations.py --weights {args.weights} --runtimes {' '.join(args.runtimes)} "
             f"--policies {' '.join(args.policies)} --test {args.test} --runs {args.runs}` on {cpu.get('model')} "
             f"({', '.join(cpu.get('features', []))}), {r['date']}. INT8 = post-training INT8 of `{args.weights}` "
             f"(calibration {args.calib}); AP on {args.test} generated test images at the model's size (FP32 PyTorch "
             f"AP {r['fp32_AP']:.4f}); p50 at {args.imgsz}x{args.imgsz}, batch 1, {args.runs} rounds round-robin in "
             "one process per runtime, beside its FP32 file ("
             + ", ".join(f"{rt} FP32 {ms:.1f} ms" for rt, ms in r["fp32_p50_ms"].items())
             + "). AP drops in points with 95% paired bootstrap intervals; positive = worse.", "",
             "| runtime | policy | form | ops made 8-bit | AP | drop vs FP32 [95%] (gate) | drop vs `layers` [95%] | "
             "p50 ms | speed vs FP32 |", "|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        v, w = row["vs_fp32"], row.get("vs_layers")
        lines.append(f"| {row['runtime']} | {row['policy']} | {row['form']} | {row['activations_quantized']} | "
                     f"{row['AP']:.4f} | {v['drop']:+.2f} [{v['lo']:+.2f}, {v['hi']:+.2f}] ({v['gate']}) | "
                     + (f"{w['drop']:+.2f} [{w['lo']:+.2f}, {w['hi']:+.2f}]" if w else "-")
                     + f" | {row['p50_ms']:.1f} | {row['vs_fp32_speed']:.2f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
