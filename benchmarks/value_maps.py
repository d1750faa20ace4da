"""A/B of a change to the exported graph, on the runtimes that run grid_sample: both graphs of the same weights,
made with a module switch off and on. The changes (--change):

- ``value_maps`` (2026-12-02): the decoder's value projection on each level's channel-first map (a 1x1
  convolution whose output is the layout grid_sample reads) against the projection of the tokens followed by a
  transpose of all 8,400 x 256 values per decoder layer. Writes docs/value_maps.md.
- ``sum_and_pool`` (2026-12-03): each level's grid_sample output weighted and summed apart instead of one Concat
  of all levels (rtdetr_edge.model.deformable.LEVEL_SUM), and in the s8s8 file the quantizer after the
  backbone's max-pool moved before it (rtdetr_edge.export.qdq.POOLS). Both are exact rewrites: the AP columns
  show it. Writes docs/sum_and_pool.md.
- ``boxes_of_topk`` (2026-12-03): the encoder's box head (a per-token MLP) on the 300 selected tokens instead of
  all 8,400 followed by a gather (rtdetr_edge.model.decoder.BOXES_OF_TOPK). The same boxes in float; INT8
  calibrates the head's ranges on the selected tokens. Writes docs/boxes_of_topk.md.
- ``channel_last_tokens`` (2026-12-03): each level's map turned into the encoder-output tokens by a channel-last
  transpose and a reshape instead of a reshape and a transpose of the tokens
  (rtdetr_edge.model.decoder.CHANNEL_LAST_TOKENS). The same values. Writes docs/channel_last_tokens.md.
- ``flat_locations`` (2026-12-03): the decoder's sampling locations computed on the flat offsets, with the
  per-point factors as one row and the reference boxes broadcast along it, instead of broadcasts over [bs, Lq,
  heads, points, 2] (rtdetr_edge.model.deformable.FLAT_LOCATIONS). The same values, bit for bit. Writes
  docs/flat_locations.md.
- ``point_sum_once`` (2026-12-03): with as many points on every level, the levels' weighted grid_sample outputs
  added elementwise and then summed over the points once per decoder layer, instead of one sum over the points
  per level (rtdetr_edge.model.deformable.POINT_SUM_ONCE). Equal up to float rounding. Writes
  docs/point_sum_once.md.
- ``gemm_float_outputs`` (2026-12-03, u8s8 only: run it with --runtimes onnxruntime): the quantized matrix
  products (MatMul/Gemm) write float instead of a uint8 output that every reader dequantized straight back
  (rtdetr_edge.export.int8.U8S8_FLOAT_OUTPUTS). One rounding less per layer. Writes docs/gemm_float_outputs.md.
- ``value_matmul`` (2026-12-03, OpenVINO only: run it with --runtimes openvino): the decoder's value projection
  in the OpenVINO files as a matrix product W @ X on the flattened maps, whose output is planar, instead of the
  1x1 convolution, whose channel-last (int8) or blocked (f32) output OpenVINO reordered for GridSample
  (rtdetr_edge.model.deformable.VALUE_MATMUL). Equal up to float rounding. Writes docs/value_matmul.md.
- ``residual_sums`` (2026-12-03, OpenVINO only: run it with --runtimes openvino): 8-bit quantizers on both
  inputs of the backbone's residual sums in the fake-quant model (the branch's output, a shortcut convolution's
  output; an identity or pooled shortcut read through its first layer's quantizer), so OpenVINO adds the
  shortcut inside the convolution and writes 8-bit output (rtdetr_edge.quant.fakequant.SUM_QUANTIZERS). One
  more rounding per residual. Writes docs/residual_sums.md.

    python benchmarks/value_maps.py [--change value_maps] [--weights shapes] [--runtimes onnxruntime openvino]
        [--policies default all] [--test 1500] [--runs 40] [--theirs runs/speed_map/theirs_640.onnx]
        [--work runs/value_maps] [--out docs/<change>]

Per runtime, from the same weights: the FP32 file and the INT8 file of each policy (post-training INT8 of
--weights; onnxruntime's u8s8 form, OpenVINO's s8s8), each made both ways. The arithmetic is the same; what
changes is the graph the runtime gets (for u8s8 with value_maps, also where onnxruntime's quantizer puts the
value projection's input ranges: each level's map instead of the tokens of all).

Accuracy: AP of the INT8 files on --test generated images (seed 1007, a seed no model saw) at the model's size,
each against the FP32 PyTorch model and the two graphs against each other, with paired bootstrap intervals.
Speed: p50 at --imgsz (640), round-robin in blocks in one process per runtime (rtdetr_edge.benchmark), with the
authors' FP32 ONNX export (--theirs, made by benchmarks/speed_map.py) as the first model when given. Writes
OUT.md and OUT.json; prints the CPU's features. Exports and evaluations are cached under --work.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent
# runtime -> (format, INT8 form, the recipes' ΔAP limit in points)
RUNTIMES = {"onnxruntime": ("onnx", "u8s8", 0.3), "openvino": ("openvino", "s8s8", 0.3)}
# change -> (title, the old graph's name, the new graph's name, the switches: (module, attribute))
CHANGES = {
    "value_maps": ("The value projection on channel-first maps", "tokens", "maps",
                   [("rtdetr_edge.model.deformable", "VALUE_MAPS")]),
    "sum_and_pool": ("Per-level sums without a Concat, and the max-pool on 8-bit values", "before", "after",
                     [("rtdetr_edge.model.deformable", "LEVEL_SUM"), ("rtdetr_edge.export.qdq", "POOLS")]),
    "boxes_of_topk": ("The encoder's box head on the selected tokens", "alltokens", "topk",
                      [("rtdetr_edge.model.decoder", "BOXES_OF_TOPK")]),
    "channel_last_tokens": ("The encoder-output tokens from channel-last maps", "flatten", "channellast",
                            [("rtdetr_edge.model.decoder", "CHANNEL_LAST_TOKENS")]),
    "flat_locations": ("The sampling locations on the flat offsets", "broadcast", "flat",
                       [("rtdetr_edge.model.deformable", "FLAT_LOCATIONS")]),
    "point_sum_once": ("One sum over the points per decoder layer", "perlevel", "once",
                       [("rtdetr_edge.model.deformable", "POINT_SUM_ONCE")]),
    "gemm_float_outputs": ("The u8s8 matrix products write float", "uint8out", "floatout",
                           [("rtdetr_edge.export.int8", "U8S8_FLOAT_OUTPUTS")]),
    "value_matmul": ("OpenVINO's value projection as a matrix product", "conv", "matmul",
                     [("rtdetr_edge.model.deformable", "VALUE_MATMUL")]),
    "residual_sums": ("The residual sums on 8-bit values", "floatsums", "int8sums",
                      [("rtdetr_edge.quant.fakequant", "SUM_QUANTIZERS")]),
}


def export_both(change, fmt, weights, imgsz, work, tag, **extra) -> dict:
    """{graph: bundle}, both graphs of one file, cached under `work`."""
    import importlib

    import rtdetr_edge.export as export_module
    from rtdetr_edge.export import export

    _, old, new, switches = CHANGES[change]
    modules = [(importlib.import_module(m), a) for m, a in switches]
    out = {}
    for graph, on in ((old, False), (new, True)):
        path = Path(work) / f"{fmt}_{tag}_{graph}_{imgsz}"
        if not (path / "manifest.json").is_file():
            for m, a in modules:
                setattr(m, a, on)
            export_module._WRITTEN.clear()  # its FP32 files are keyed by weights and settings, not by the graph
            try:
                t0 = time.time()
                export(weights, fmt, imgsz=imgsz, out=path, force=True, raw_twin=False, **extra)
                print(f"exported {path.name} in {time.time() - t0:.0f} s", flush=True)
            finally:
                for m, a in modules:
                    setattr(m, a, True)
        out[graph] = path
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--change", default="value_maps", choices=list(CHANGES))
    ap.add_argument("--weights", default="shapes")
    ap.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=list(RUNTIMES))
    ap.add_argument("--policies", nargs="+", default=["default", "all"])
    ap.add_argument("--calib", default="shapes-64")
    ap.add_argument("--test", type=int, default=1500, help="test images (generated, seed 1007)")
    ap.add_argument("--imgsz", type=int, default=640, help="the size timed")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--resamples", type=int, default=300)
    ap.add_argument("--theirs", default=None, help="the authors' FP32 ONNX export at --imgsz (speed_map.py)")
    ap.add_argument("--work", default="runs/value_maps")
    ap.add_argument("--out", default=None, help="default: docs/<change>")
    args = ap.parse_args()
    args.out = args.out or str(ROOT / "docs" / args.change)
    _, OLD, NEW, _ = CHANGES[args.change]

    sys.path.insert(0, str(Path(__file__).parent))
    from equal_schedule import Bootstrap, ab_setup, evaluate_all

    from rtdetr_edge.benchmark import benchmark
    from rtdetr_edge.runtime.base import load_runtime
    from rtdetr_edge.runtime.pytorch import TorchRuntime
    from rtdetr_edge.zoo import resolve_weights

    cpu, work, size, test = ab_setup(args)

    def int8(rt, policy, imgsz):
        fmt, form, _ = RUNTIMES[rt]
        return export_both(args.change, fmt, args.weights, imgsz, work, f"{form}_{policy}", precision="int8",
                           int8_form=form,
                           calib=args.calib, policy=policy)

    models = {"fp32 torch": lambda: TorchRuntime(str(resolve_weights(args.weights)))}
    for rt in args.runtimes:
        for p in args.policies:
            for graph, path in int8(rt, p, size).items():
                models[f"{rt} {p} {graph}"] = lambda path=path: load_runtime(path)
    ev = evaluate_all(models, test, work, args.test)
    boot = Bootstrap(ev["fp32 torch"]["matches"].n_images, args.resamples)

    rows, speed = [], {}
    for rt in args.runtimes:
        fmt, _, limit = RUNTIMES[rt]
        timed = {"authors' FP32 (onnxruntime)": Path(args.theirs)} if args.theirs else {}
        for graph, path in export_both(args.change, fmt, args.weights, args.imgsz, work, "fp32",
                                       precision="fp32").items():
            timed[f"FP32 {graph}"] = path
        for p in args.policies:
            for graph, path in int8(rt, p, args.imgsz).items():
                timed[f"{p} {graph}"] = path
        report = benchmark([str(v) for v in timed.values()], runs=args.runs, warmup=3)
        p50 = {label: e["p50_ms"] for label, e in zip(timed, report["models"])}
        speed[rt] = p50
        for p in ["FP32"] + args.policies:
            for graph in (OLD, NEW):
                key = f"{p} {graph}"
                row = {"runtime": rt, "model": p, "graph": graph, "p50_ms": p50[key],
                       "vs_old": p50[f"{p} {OLD}"] / p50[key],
                       "vs_authors": (p50["authors' FP32 (onnxruntime)"] / p50[key]) if args.theirs else None}
                name = f"{rt} {p} {graph}"
                if name in ev:
                    row.update(AP=ev[name]["AP"], vs_fp32=boot.compare(ev, "fp32 torch", name, limit),
                               **({"vs_old_AP": boot.compare(ev, f"{rt} {p} {OLD}", name, None)}
                                  if graph != OLD else {}))
                rows.append(row)
    result = {"cpu": cpu, "date": time.strftime("%Y-%m-%d"), "args": vars(args), "fp32_AP": ev["fp32 torch"]["AP"],
              "p50_ms": speed, "rows": rows}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str))
    out.with_suffix(".md").write_text(markdown(args, result))
    print(out.with_suffix(".md").read_text())


WHAT = {"value_maps": "`tokens`: the projection of the tokens, then a transpose into the maps grid_sample reads "
                      "(the graph before); `maps`: a 1x1 convolution on each level's map.",
        "sum_and_pool": "`before`: one Concat of all levels' grid_sample outputs, then the weighted sum; the s8s8 "
                        "file's quantizer after the max-pool (the graphs before); `after`: each level weighted and "
                        "summed apart, the quantizer before the max-pool (s8s8 only).",
        "boxes_of_topk": "`alltokens`: the encoder's 3-layer box head on all 8,400 tokens, then a gather of the 300 "
                         "selected (the graph before); `topk`: the gather first, the box head on the 300.",
        "channel_last_tokens": "`flatten`: each level's map [bs, C, h, w] reshaped to [bs, C, h*w], the levels "
                               "concatenated, then one transpose of all 8,400 x 256 values to tokens (the graph "
                               "before); `channellast`: each map transposed to [bs, h, w, C], then reshaped to "
                               "[bs, h*w, C] and concatenated.",
        "flat_locations": "`broadcast`: the sampling locations as the reference centre plus the offsets times the "
                          "per-point scale and the box size, broadcast over [bs, 300, heads, points, 2] (the graph "
                          "before); `flat`: the same products on the flat [bs, 300, heads x points x 2] offsets, "
                          "the per-point factors as one row and the boxes broadcast along it.",
        "point_sum_once": "`perlevel`: each level's grid_sample output weighted and summed over its points, then the "
                          "levels added (the graph before); `once`: the levels' weighted samples added, then one "
                          "sum over the points per decoder layer.",
        "value_matmul": "`conv`: the value projection as a 1x1 convolution on each level's map, whose output "
                        "OpenVINO reorders from its channel-last (int8) or blocked (f32) layout to the planar one "
                        "GridSample reads (the file before); `matmul`: the same weights as W @ X on the flattened "
                        "maps, which reads the maps planar and writes planar.",
        "residual_sums": "`floatsums`: the backbone's residual sums read the float outputs of their convolutions "
                         "(the file before); `int8sums`: both inputs of each sum through an 8-bit quantizer (a "
                         "new calibrated one on a convolution's output; the block input through its first "
                         "layer's), so OpenVINO adds the shortcut inside the convolution.",
        "gemm_float_outputs": "`uint8out`: onnxruntime's quantizer also quantizes each quantized MatMul/Gemm's "
                              "output to uint8, which its float readers dequantize again (the file before); "
                              "`floatout`: those layers write float (QGemm without an output scale); the "
                              "convolutions' outputs stay uint8."}


def markdown(args, r) -> str:
    cpu = r["cpu"]
    title, old, _, _ = CHANGES[args.change]
    lines = [f"# {title}", "",
             f"`python benchmarks/value_maps.py --change {args.change} --weights {args.weights} --runtimes "
             f"{' '.join(args.runtimes)} --policies {' '.join(args.policies)} --test {args.test} --runs {args.runs}"
             + (" --theirs ..." if args.theirs else "") + f"` on {cpu.get('model')} "
             f"({', '.join(cpu.get('features', []))}), {r['date']}. {WHAT[args.change]} INT8 = post-training INT8 "
             f"of `{args.weights}` (calibration {args.calib}); AP on "
             f"{args.test} generated test images at the model's size (FP32 PyTorch AP {r['fp32_AP']:.4f}), drops "
             "in points with 95% paired bootstrap intervals (positive = worse); p50 at "
             f"{args.imgsz}x{args.imgsz}, batch 1, {args.runs} timed runs per model, round-robin in blocks in one "
             "process per runtime.", "",
             f"| runtime | model | graph | AP | drop vs FP32 [95%] (gate) | drop vs `{old}` [95%] | p50 ms | "
             f"speed vs `{old}` | vs authors' FP32 |", "|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        v, w = row.get("vs_fp32"), row.get("vs_old_AP")
        lines.append(f"| {row['runtime']} | {row['model']} | {row['graph']} | "
                     + (f"{row['AP']:.4f} | {v['drop']:+.2f} [{v['lo']:+.2f}, {v['hi']:+.2f}] ({v['gate']})"
                        if v else "- | -")
                     + " | " + (f"{w['drop']:+.2f} [{w['lo']:+.2f}, {w['hi']:+.2f}]" if w else "-")
                     + f" | {row['p50_ms']:.1f} | {row['vs_old']:.2f}x | "
                     + (f"{row['vs_authors']:.2f}x" if row["vs_authors"] else "-") + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
