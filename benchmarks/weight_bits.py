"""INT8 on an x86 CPU without VNNI: the same Q/DQ graph with 8-bit and with 7-bit weights, on OpenVINO (int8
kernels) and on onnxruntime (which reproduces the graph's own numbers: on the 8-bit graph, parity gave a
top-100 match of 1.000 with the fake-quant model's golden outputs). On AVX2 or AVX-512 without VNNI the int8 dot product adds pairs of
uint8 x int8 products in int16 with saturation; 255 x 127 x 2 overflows it, 255 x 63 x 2 does not.

    python benchmarks/weight_bits.py --bundle S8S8_BUNDLE --data quickstart/data [--doc docs/weight_bits]

S8S8_BUNDLE: an `export --precision int8 --int8-form s8s8` ONNX bundle of a QAT checkpoint trained with
`--weight-bits 8` (its weights on the full int8 grid). The 7-bit graph is made from it by halving each int8
weight (rounded) and doubling its scale, so it also shows what re-quantizing an 8-bit QAT model costs.
"""

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent


def seven_bit(src, dst):
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from rtdetr_edge.export.qdq import _const_values

    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consts = _const_values(graph)
    for n in graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits and \
                inits[n.input[0]].data_type == onnx.TensorProto.INT8:
            w = numpy_helper.to_array(inits[n.input[0]]).astype(np.int32)
            inits[n.input[0]].CopyFrom(numpy_helper.from_array(np.clip(np.rint(w / 2), -64, 63).astype(np.int8),
                                                               n.input[0]))
            name = n.input[1] + "_x2"
            if name not in inits:
                inits[name] = numpy_helper.from_array((consts[n.input[1]] * 2).astype(np.float32), name)
                graph.initializer.append(inits[name])
            n.input[1] = name
    onnx.save(model, str(dst))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", default="runs/weight_bits")
    ap.add_argument("--doc", default=str(ROOT / "docs" / "weight_bits"))
    args = ap.parse_args()

    from rtdetr_edge.cocoeval import evaluate_runtime
    from rtdetr_edge.export.openvino import export_openvino
    from rtdetr_edge.parity import _dataset
    from rtdetr_edge.runtime.base import load_runtime
    from rtdetr_edge.sysinfo import cpu_info, cpu_line

    cpu = cpu_info()
    print(cpu_line(cpu), flush=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    src = Path(args.bundle) / "model.onnx"
    seven_bit(src, work / "w7.onnx")
    export_openvino(src, work / "w8.xml", "int8")
    export_openvino(work / "w7.onnx", work / "w7.xml", "int8")
    dataset = _dataset(args.data, None)
    rows = []
    for weights, runtime, path in (("8-bit", "openvino", work / "w8.xml"), ("7-bit", "openvino", work / "w7.xml"),
                                   ("8-bit", "onnxruntime", src), ("7-bit", "onnxruntime", work / "w7.onnx")):
        rt = load_runtime(path)
        ap_ = evaluate_runtime(rt, dataset)
        rows.append({"weights": weights, "runtime": runtime, "AP": ap_["AP"], "AP50": ap_["AP50"],
                     "ran": "int8 kernels" if runtime == "openvino" else "the graph's own numbers"})
        print(json.dumps(rows[-1]), flush=True)
    lines = ["# INT8 weights on 7 bits: x86 CPUs without VNNI", "",
             f"Made by `python benchmarks/weight_bits.py` on {time.strftime('%Y-%m-%d')}: CPU {cpu['model']} "
             f"({cpu['cores']} cores; {', '.join(cpu['features'])}), {len(dataset)} validation images. The graph is "
             "an s8s8 export of a QAT checkpoint trained with 8-bit weights; the 7-bit graph halves its int8 "
             "weights and doubles their scales. onnxruntime reproduces the graph's own numbers (on the 8-bit graph "
             "`rtdetr-edge parity` gave a top-100 match of 1.000 with the fake-quant model's golden outputs); "
             "OpenVINO runs int8 kernels.", "",
             "| weights | runtime (ran) | AP | AP50 |", "|---|---|---|---|"]
    lines += [f"| {r['weights']} | {r['runtime']} ({r['ran']}) | {r['AP']:.4f} | {r['AP50']:.4f} |" for r in rows]
    doc = Path(args.doc)
    doc.with_suffix(".md").write_text("\n".join(lines) + "\n")
    doc.with_suffix(".json").write_text(json.dumps({"cpu": cpu, "rows": rows}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
