"""INT8 files of a QAT checkpoint whose activation ranges a runtime quantizer calibrates (onnxruntime's u8s8,
TFLite static): the ranges calibration finds against the ranges QAT learned, carried into the file.
Accuracy (COCO AP drop against the FP32 PyTorch model, paired bootstrap interval) and speed (p50, the files
timed round-robin in one process).

Forms compared (--format onnx: u8s8 through onnxruntime's `TensorQuantOverrides`; --format tflite: static
INT8 through ai-edge-quantizer's calibration statistics):
- `calibrated`: every range from calibration (what export wrote before);
- `qat ranges` (onnx only): every quantized layer's input on the QAT model's own range, [-amax, +amax] (the
  grid QAT trained on, 255 steps instead of 254); the layers' outputs stay calibrated (QAT has none there);
- `qat clip` (what export writes for a QAT checkpoint): only the upper end from QAT (max = amax), the lower
  end from calibration (the asymmetric grid is finer where the activation is one-sided, e.g. after SiLU).

    python benchmarks/qat_ranges.py --format onnx --qat quickstart/qat/best.pt \
        --fp32 quickstart/finetune/best.pt --data quickstart/data [--out runs/qat_ranges] [--runs 20]

Writes docs/qat_ranges_FORMAT.md and .json (--doc). Prints the CPU's features: compare ratios, not times.
"""

import argparse
import json
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--format", choices=("onnx", "tflite"), default="onnx")
    ap.add_argument("--qat", required=True)
    ap.add_argument("--fp32", required=True, help="the FP32 checkpoint the AP drop is measured against")
    ap.add_argument("--data", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", default="runs/qat_ranges")
    ap.add_argument("--doc", default=None, help="default: docs/qat_ranges_FORMAT")
    args = ap.parse_args()

    import rtdetr_edge.export.int8 as int8
    from compare_files import accuracy_and_speed
    from rtdetr_edge.export import export
    from rtdetr_edge.parity import _dataset
    from rtdetr_edge.sysinfo import cpu_info, cpu_line

    cpu = cpu_info()
    print(cpu_line(cpu), flush=True)
    out = Path(args.out) / args.format
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    if args.format == "onnx":
        real, hook, form = int8.qat_input_ranges, "qat_input_ranges", "u8s8"

        def variant(name, lower=None):
            def qat_input_ranges(qdq_path, float_path, lower_from_qat=False):
                found = {} if lower is None else real(qdq_path, float_path, lower_from_qat=lower)
                counts[name] = len(found)
                return found
            return qat_input_ranges

        forms = {"calibrated": variant("calibrated"), "qat ranges": variant("qat ranges", True),
                 "qat clip": variant("qat clip", False)}
    else:
        real, hook, form = int8.qat_clip, "qat_clip", "static"

        def variant(name, clip=False):
            def qat_clip(stats, inputs, model):
                counts[name] = real(stats, inputs, model) if clip else 0
                return counts[name]
            return qat_clip

        forms = {"calibrated": variant("calibrated"), "qat clip": variant("qat clip", True)}
    bundles = {}
    for name, fn in forms.items():
        path, t0 = out / name.replace(" ", "_"), time.time()
        with mock.patch.object(int8, hook, fn):
            bundles[name] = export(args.qat, args.format, precision="int8", int8_form=form, out=path, force=True)
        print(f"exported {name} in {time.time() - t0:.0f} s ({counts[name]} tensors on QAT's range)", flush=True)
    measured = accuracy_and_speed(bundles, args.fp32, args.data, args.runs)
    rows = [{"form": name, "on_qat_range": counts[name], **measured[name]} for name in bundles]
    images = len(_dataset(args.data, None))
    title = {"onnx": "onnxruntime u8s8", "tflite": "TFLite static INT8"}[args.format]
    lines = [f"# {title}: calibrated activation ranges or QAT's", "",
             f"Made by `python benchmarks/qat_ranges.py --format {args.format}` on {time.strftime('%Y-%m-%d')}: CPU "
             f"{cpu['model']} ({cpu['cores']} cores; {', '.join(cpu['features'])}). QAT checkpoint `{args.qat}`, AP "
             f"drop against the FP32 PyTorch model `{args.fp32}` on {images} validation images of `{args.data}` "
             f"(paired bootstrap, 95% interval), p50 over {args.runs} runs at the checkpoint's size, the files "
             "timed round-robin in one process.", "",
             "| file | layer inputs on QAT's range | AP | AP drop [95% interval] | top-100 match | p50 ms |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['form']} | {r['on_qat_range']} | {r['AP']:.4f} | {r['ap_drop_points']:+.2f} "
                     f"[{r['interval_points'][0]:+.2f}, {r['interval_points'][1]:+.2f}] | {r['top100_match']:.3f} | "
                     f"{r['p50_ms']:.1f} |")
    doc = Path(args.doc or ROOT / "docs" / f"qat_ranges_{args.format}")
    doc.with_suffix(".md").write_text("\n".join(lines) + "\n")
    doc.with_suffix(".json").write_text(json.dumps({"cpu": cpu, "args": vars(args), "rows": rows}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
