"""INT8 on every CPU backend: accuracy (FP32 / PTQ INT8 / QAT INT8, COCO AP on the validation split) and
speed (INT8 against FP32 on the same runtime, side by side in one process).

    python benchmarks/int8.py --fp32 rtdetr_edge/weights/shapes_r18vd_320.pt --qat runs/qat/best.pt \
        --data runs/shapes/data [--calib shapes-64] [--speed-imgsz 640] [--runs 20] [--out runs/int8_bench]

Accuracy at the checkpoints' size (320): `rtdetr-edge parity` against the FP32 PyTorch model, for each
runtime in the form its recipe gives it (onnxruntime u8s8, OpenVINO s8s8, TFLite static), plus the s8s8
ONNX on onnxruntime for reference. Speed at --speed-imgsz: FP32 and QAT INT8 bundles of each runtime,
timed round-robin (`rtdetr-edge benchmark`), plus the s8s8 graph rewritten to uint8 activations with
zero point 128 (the same numbers) on onnxruntime: the form that was *not* chosen, measured. Prints the
CPU's features; compare ratios, not absolute times, across machines.
"""

import argparse
import json
import time
from pathlib import Path

FORMS = {"onnxruntime": ("onnx", "u8s8"), "openvino": ("openvino", "s8s8"), "tflite": ("tflite", "static")}


def rewrite_u8_zero_point_128(src, dst):
    """The s8s8 graph with every activation Q/DQ pair moved to uint8, zero point 128 (same scale, the same
    256 values): what a pure rewrite gives onnxruntime. Not offered by export: it runs slower than FP32."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from rtdetr_edge.export.qdq import _const_values, _is_weight_pair

    model = onnx.load(str(src))
    graph = model.graph
    values = _const_values(graph)
    producers = {o: n for n in graph.node for o in n.output}
    zp = "u8_zero_point_128"
    graph.initializer.append(numpy_helper.from_array(np.array(128, np.uint8), zp))
    for n in graph.node:
        if n.op_type == "QuantizeLinear" and not _is_weight_pair(n, values):
            n.input[2] = zp
        elif n.op_type == "DequantizeLinear":
            src_node = producers.get(n.input[0])
            if src_node is not None and src_node.op_type == "QuantizeLinear" and src_node.input[2] == zp:
                n.input[2] = zp
    onnx.save(model, str(dst))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--qat", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--calib", default="shapes-64")
    ap.add_argument("--speed-imgsz", type=int, default=640)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", default="runs/int8_bench")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args()

    from rtdetr_edge.benchmark import benchmark
    from rtdetr_edge.export import export
    from rtdetr_edge.parity import artifact_name, parity, write_report
    from rtdetr_edge.sysinfo import cpu_info, cpu_line

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cpu = cpu_info()
    print(cpu_line(cpu))
    result = {"cpu": cpu, "fp32": args.fp32, "qat": args.qat, "calib": args.calib}

    def bundle(name, weights, fmt, precision="fp32", form=None, imgsz=None, calib=None):
        path = out / name
        if not (path / "manifest.json").is_file():
            t0 = time.time()
            export(weights, fmt, precision=precision, int8_form=form, imgsz=imgsz, calib=calib, out=path, force=True)
            print(f"exported {name} in {time.time() - t0:.0f} s", flush=True)
        return path

    if not args.skip_accuracy:
        bundles = []
        for runtime, (fmt, form) in FORMS.items():
            bundles.append(bundle(f"acc_{runtime}_fp32", args.fp32, fmt))
            bundles.append(bundle(f"acc_{runtime}_ptq", args.fp32, fmt, "int8", form, calib=args.calib))
            bundles.append(bundle(f"acc_{runtime}_qat", args.qat, fmt, "int8", form, calib=args.calib))
        bundles.append(bundle("acc_onnxruntime_qat_s8s8", args.qat, "onnx", "int8", "s8s8"))
        report = parity(bundles, weights=args.fp32, data=args.data)
        write_report(report, out / "parity_acc")
        rows = []
        for b, a in zip(bundles, report["artifacts"]):
            m = a["metrics"]
            rows.append({"bundle": b.name, "artifact": artifact_name(a), "AP": m["AP"], "AP50": m["AP50"],
                         "fp32_torch_AP": m["torch_AP"], "ap_drop": m["ap_drop"], "ok": a["ok"]})
            print(f"{b.name:32s} AP {m['AP']:.4f} AP50 {m['AP50']:.4f} dAP {100 * m['ap_drop']:+.2f} points "
                  f"{'ok' if a['ok'] else 'FAIL ' + '; '.join(a['broken'])}", flush=True)
        result["accuracy"] = rows

    if not args.skip_speed:
        s = args.speed_imgsz
        models = []
        for runtime, (fmt, form) in FORMS.items():
            models.append(bundle(f"speed{s}_{runtime}_fp32", args.fp32, fmt, imgsz=s))
            models.append(bundle(f"speed{s}_{runtime}_qat", args.qat, fmt, "int8", form, imgsz=s, calib=args.calib))
        s8 = bundle(f"speed{s}_onnxruntime_qat_s8s8", args.qat, "onnx", "int8", "s8s8", imgsz=s)
        rewritten = out / f"speed{s}_s8s8_rewritten_u8zp128.onnx"
        rewrite_u8_zero_point_128(s8 / "model.onnx", rewritten)
        # OpenVINO on onnxruntime's u8s8 file (converted to IR): is the s8s8 form really OpenVINO's best?
        from rtdetr_edge.export.openvino import export_openvino

        ov_u8 = out / f"speed{s}_openvino_u8s8.xml"
        if not ov_u8.is_file():
            export_openvino(out / f"speed{s}_onnxruntime_qat" / "model.onnx", ov_u8, "int8")
        models += [s8 / "model.onnx", rewritten, ov_u8]
        report = benchmark([str(m) for m in models], runs=args.runs, warmup=3)
        by = {e["model"]: e for e in report["models"]}
        rows = []
        for runtime in FORMS:
            f, q = by[str(out / f"speed{s}_{runtime}_fp32")], by[str(out / f"speed{s}_{runtime}_qat")]
            rows.append({"runtime": runtime, "form": FORMS[runtime][1], "fp32_ms": f["p50_ms"], "int8_ms": q["p50_ms"],
                         "speedup": f["p50_ms"] / q["p50_ms"], "ran": q["ran"]})
        ort_fp32 = by[str(out / f"speed{s}_onnxruntime_fp32")]["p50_ms"]
        for label, path in (("s8s8 on onnxruntime", s8 / "model.onnx"), ("s8s8 rewritten to u8 zp 128", rewritten)):
            e = by[str(path)]
            rows.append({"runtime": "onnxruntime", "form": label, "fp32_ms": ort_fp32, "int8_ms": e["p50_ms"],
                         "speedup": ort_fp32 / e["p50_ms"], "ran": e["ran"]})
        ov_fp32 = by[str(out / f"speed{s}_openvino_fp32")]["p50_ms"]
        e = by[str(ov_u8)]
        rows.append({"runtime": "openvino", "form": "u8s8 (onnxruntime's file as IR)", "fp32_ms": ov_fp32,
                     "int8_ms": e["p50_ms"], "speedup": ov_fp32 / e["p50_ms"], "ran": e["ran"]})
        for r in rows:
            print(f"{r['runtime']:12s} {r['form']:28s} FP32 {r['fp32_ms']:7.1f} ms  INT8 {r['int8_ms']:7.1f} ms  "
                  f"{r['speedup']:.2f}x", flush=True)
        result["speed"] = {"imgsz": s, "runs": args.runs, "rows": rows, "benchmark": report}
    (out / "int8_bench.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {out / 'int8_bench.json'}")


if __name__ == "__main__":
    main()
