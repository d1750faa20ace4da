"""Can an OpenVINO INT8 file run its float layers in bf16 and keep the accuracy-sensitive ones in f32?

OpenVINO's CPU plugin leaves a node at its original precision under a bf16 inference hint when the node's
rt_info disables precision conversion; the IR form is `<rt_info><attribute name="precise" version="0"/>`
(what `ov::disable_fp16_compression` writes). This script marks sets of layers of a bundle exported with
`--precision int8 --int8-float bf16` that way, and measures each variant's AP against the same file with f32
floats (paired bootstrap over the images), and how many runtime nodes still run bf16.

    python benchmarks/bf16_keep_f32.py --bundle BF16_FLOATS_BUNDLE --data TEST_DIR [--images 1500]

Measured 2026-12-03 on 1,500 generated test images (docs/bf16_keep_f32.md): no marking recovers the 0.17
points bf16 floats cost; docs/int8.md#the-float-layers-in-bf16 says why.
"""

import argparse
import json
import re
import shutil
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).parent.parent
# layers that hold no arithmetic to keep, or are the int8 kernels themselves
_NOT_FLOAT = {"Const", "FakeQuantize", "Convolution", "MatMul", "Parameter", "Result"}
_DECODER = re.compile(r"^/model/decoder/(decoder/|enc_bbox_head|enc_score_head)|^/postprocessor")
MARKS = {
    "the decoder's float layers (sampling, box refinement, heads, post-processing)":
        lambda name, kind: bool(_DECODER.match(name)) and kind not in _NOT_FLOAT,
    "every float layer outside the backbone": lambda name, kind: not name.startswith("/model/backbone/")
        and kind not in _NOT_FLOAT,
    "every float layer": lambda name, kind: kind not in _NOT_FLOAT,
    "every layer, the int8 ones too": lambda name, kind: kind not in {"Const", "Parameter", "Result"},
}


def mark(src, dst, rule) -> int:
    """A copy of bundle `src` at `dst` whose IR has `rule`'s layers marked precise; the manifest re-sealed."""
    from rtdetr_edge.bundle import write_manifest

    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    manifest = json.loads((Path(dst) / "manifest.json").read_text())
    xml = Path(dst) / manifest["artifact"]
    tree = ET.parse(xml)
    marked = 0
    for layer in tree.getroot().iter("layer"):
        if rule(layer.get("name"), layer.get("type")):
            rt = layer.find("rt_info")
            if rt is None:
                rt = ET.Element("rt_info")
                layer.insert(1 if layer.find("data") is not None else 0, rt)
            ET.SubElement(rt, "attribute", {"name": "precise", "version": "0"})
            marked += 1
    tree.write(xml)
    write_manifest(dst, manifest)
    return marked


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, help="an OpenVINO INT8 bundle exported with --int8-float bf16")
    ap.add_argument("--data", required=True, help="a COCO folder; its val split is evaluated")
    ap.add_argument("--images", type=int, default=None, help="the first N validation images (default: all)")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--work", default="runs/bf16_keep_f32")
    ap.add_argument("--doc", default=str(ROOT / "docs" / "bf16_keep_f32"))
    args = ap.parse_args()

    from rtdetr_edge.apstats import paired_bootstrap
    from rtdetr_edge.cocoeval import evaluate_runtime
    from rtdetr_edge.parity import _datasets
    from rtdetr_edge.runtime.base import load_runtime
    from rtdetr_edge.sysinfo import cpu_info, cpu_line

    cpu = cpu_info()
    print(cpu_line(cpu), flush=True)
    if "AVX512-BF16" not in cpu["features"] and "AMX-BF16" not in cpu["features"]:
        raise SystemExit("this CPU has no native bf16: OpenVINO runs the float layers in f32 whatever is marked")
    dataset = _datasets(args.data, args.images)[None]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    variants = [("none: f32 floats (the default export)", args.bundle, "f32", 0),
                ("none: bf16 floats", args.bundle, None, 0)]
    for i, (what, rule) in enumerate(MARKS.items()):
        variants.append((what, str(work / f"marked{i}"), None, mark(args.bundle, work / f"marked{i}", rule)))
    rows, matches = [], {}
    for what, bundle, hint, marked in variants:
        rt = load_runtime(bundle, precision_hint=hint)
        nodes = Counter(op.get_rt_info()["runtimePrecision"].astype(str)
                        for op in rt.compiled.get_runtime_model().get_ops())
        res = evaluate_runtime(rt, dataset, matches=True)
        matches[what] = res["matches"]
        row = {"marked": what, "layers marked": marked, "ran": rt.effective_precision,
               "runtime nodes in bf16": nodes.get("bf16", 0), "AP": res["AP"]}
        if rows:
            row["loss vs f32 floats"] = paired_bootstrap(matches[rows[0]["marked"]], res["matches"],
                                                         resamples=args.resamples)
        rows.append(row)
        print(json.dumps(row), flush=True)
    pts = lambda d: f"{100 * d['drop']:+.2f} [{100 * d['lo']:+.2f}, {100 * d['hi']:+.2f}]"
    lines = ["# bf16 floats with some layers kept in f32", "",
             f"Made by `python benchmarks/bf16_keep_f32.py` on {time.strftime('%Y-%m-%d')}: CPU {cpu['model']} "
             f"({cpu['cores']} cores; {', '.join(cpu['features'])}), {len(dataset)} images of `{args.data}`. "
             "Each variant is the same OpenVINO INT8 file with the named layers marked `precise` (kept at their "
             "precision under the bf16 hint). The loss is the f32-float file's AP minus the variant's, in points, "
             f"with its paired bootstrap 95% interval over the images ({args.resamples} resamples).", "",
             "| layers marked | how many | ran | runtime nodes in bf16 | AP | loss vs f32 floats [95%], points |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['marked']} | {r['layers marked']} | {r['ran']} | {r['runtime nodes in bf16']} | {r['AP']:.4f} | "
              f"{pts(r['loss vs f32 floats']) if 'loss vs f32 floats' in r else '-'} |" for r in rows]
    doc = Path(args.doc)
    doc.with_suffix(".md").write_text("\n".join(lines) + "\n")
    doc.with_suffix(".json").write_text(json.dumps({"cpu": cpu, "images": len(dataset), "rows": rows}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
