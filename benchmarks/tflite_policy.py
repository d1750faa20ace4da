"""TFLite static INT8 with and without the policy: accuracy (COCO AP drop against the FP32 PyTorch model, with
its paired bootstrap interval) and speed (p50, both files timed round-robin in one process) of a QAT
checkpoint's TFLite INT8 file made two ways:

- `policy`: what `export` writes: the layers the checkpoint's policy keeps float (default: the deformable
  attention's sampling offsets and attention weights, the score and box heads) stay float ops;
- `every layer`: every CONV_2D/FULLY_CONNECTED op INT8 (what export wrote before it applied the policy).

    python benchmarks/tflite_policy.py --qat quickstart/qat/best.pt --fp32 quickstart/finetune/best.pt \
        --data quickstart/data [--out runs/tflite_policy] [--runs 20]

Writes docs/tflite_policy.md and .json (--doc). Prints the CPU's features: compare the ratio, not the times.
"""

import argparse
import json
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qat", required=True)
    ap.add_argument("--fp32", required=True, help="the FP32 checkpoint the AP drop is measured against")
    ap.add_argument("--data", required=True)
    ap.add_argument("--calib", default=None, help="default: the list the QAT checkpoint was calibrated with")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", default="runs/tflite_policy")
    ap.add_argument("--doc", default=str(ROOT / "docs" / "tflite_policy"))
    args = ap.parse_args()

    import rtdetr_edge.export.int8 as int8
    from compare_files import accuracy_and_speed
    from rtdetr_edge.export import export
    from rtdetr_edge.sysinfo import cpu_info, cpu_line

    cpu = cpu_info()
    print(cpu_line(cpu), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    real = int8.tflite_float_ops

    def every_layer(path, model):
        found = real(path, model)
        return {**found, "int8_ops": found["int8_ops"] + found["float_ops"], "float_ops": 0, "scopes": []}

    bundles = {}
    for name, mapper in (("policy", real), ("every layer", every_layer)):
        path = out / name.replace(" ", "_")
        if not (path / "manifest.json").is_file():
            t0 = time.time()
            with mock.patch.object(int8, "tflite_float_ops", mapper):
                export(args.qat, "tflite", precision="int8", calib=args.calib, out=path, force=True)
            print(f"exported {name} in {time.time() - t0:.0f} s", flush=True)
        bundles[name] = path
    measured = accuracy_and_speed(bundles, args.fp32, args.data, args.runs)
    rows = []
    for name, path in bundles.items():
        facts = json.loads((path / "manifest.json").read_text())["converter"]["policy_in_file"]
        row = {k: v for k, v in measured[name].items() if k != "top100_match"}
        rows.append({"form": name, "int8_ops": facts["int8_ops"], "float_ops": facts["float_ops"], **row})
    from rtdetr_edge.parity import _dataset

    images = len(_dataset(args.data, None))
    lines = ["# TFLite static INT8: the policy in the file", "",
             f"Made by `python benchmarks/tflite_policy.py` on {time.strftime('%Y-%m-%d')}: CPU {cpu['model']} "
             f"({cpu['cores']} cores; {', '.join(cpu['features'])}). QAT checkpoint `{args.qat}`, AP drop against "
             f"the FP32 PyTorch model `{args.fp32}` on {images} validation images of `{args.data}` (paired "
             f"bootstrap, 95% interval), p50 over {args.runs} runs at the checkpoint's size, both files timed "
             "round-robin in one process.", "",
             "| TFLite INT8 file | INT8 ops | float ops | AP | AP drop [95% interval] | p50 ms |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['form']} | {r['int8_ops']} | {r['float_ops']} | {r['AP']:.4f} | "
                     f"{r['ap_drop_points']:+.2f} [{r['interval_points'][0]:+.2f}, {r['interval_points'][1]:+.2f}] | "
                     f"{r['p50_ms']:.1f} |")
    doc = Path(args.doc)
    doc.with_suffix(".md").write_text("\n".join(lines) + "\n")
    doc.with_suffix(".json").write_text(json.dumps({"cpu": cpu, "args": vars(args), "rows": rows}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
