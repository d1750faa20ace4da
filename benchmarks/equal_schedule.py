"""INT8's cost against a fair baseline: FP32 and QAT fine-tuned with the same schedule from the same start, then
every INT8 file (QAT and plain post-training) measured against that equally trained FP32 model on a test split
large enough to resolve 0.3 AP points.

    python benchmarks/equal_schedule.py [--weights shapes] [--train 200] [--val 200] [--test 1500] [--epochs 2]
        [--seed 7] [--out runs/equal] [--doc docs/equal_schedule]

- Data: a generated training set with its own validation split (which picks each run's best.pt), and a
  separate test split (another seed) that nothing was selected on: every AP below is on it.
- Every arm runs QAT's trainer (quant/qat.py) with the same config: epochs, lr, warm-up, EMA, batch, data
  order, distillation to the start model's encoder features, the model in the QAT form (BatchNorm folded,
  statistics frozen). The only difference: a QAT arm has its policy's INT8 quantizers (weights on 7 bits,
  as `rtdetr-edge qat` does by default); the FP32 arm has none.
- INT8 files per runtime, each in its recipe's form: onnxruntime u8s8, OpenVINO s8s8, TFLite static, and the
  s8s8 ONNX that TensorRT builds (run here on onnxruntime, for its numbers). QAT: from the QAT arm's best.pt;
  PTQ: the FP32 arm's best.pt calibrated on --calib with the default policy.
- Every AP difference comes with a paired bootstrap interval over the test images (rtdetr_edge/apstats.py);
  a target is met when the interval supports it (apstats.gate: pass / within noise / not resolvable / FAIL).

Writes DOC.md and DOC.json; prints the CPU's features. The training, the exports and the evaluations are cached
under --out (delete a folder to redo that part).
"""

import argparse
import json
import platform
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent
# runtime -> (format, INT8 form, ΔAP target in AP points vs the equally trained FP32 model; issue #20)
RUNTIMES = {"onnxruntime": ("onnx", "u8s8", 0.3), "openvino": ("openvino", "s8s8", 0.3),
            "tensorrt s8s8 (on onnxruntime)": ("onnx", "s8s8", 0.3), "tflite": ("tflite", "static", 1.0)}


def float_trainer_class():
    from rtdetr_edge.model.checkpoint import load_model
    from rtdetr_edge.quant.qat import QATTrainer

    class FloatTrainer(QATTrainer):
        """QAT's trainer with no quantizers: same form, loss (distillation included), schedule and data order."""

        def build_model(self):
            model = load_model(self.cfg.weights, imgsz=self.cfg.imgsz)
            self.cfg.model = model.variant
            return model.to_form("qat")

    return FloatTrainer


def train_arms(args, data, out):
    from rtdetr_edge.quant.qat import QATConfig, QATTrainer
    from rtdetr_edge.zoo import resolve_weights

    histories = {}
    arms = [("fp32", float_trainer_class(), "default")] + [(f"qat_{p}", QATTrainer, p) for p in args.policies]
    for arm, cls, policy in arms:
        run = out / arm
        done = run / "history.json"
        if not done.is_file():
            cfg = QATConfig(data=str(data), weights=str(resolve_weights(args.weights)), epochs=args.epochs,
                            imgsz=(args.imgsz, args.imgsz), out=str(run), warmup_iters=20, workers=1,
                            seed=args.seed, calib=args.calib, policy=policy)
            t0 = time.time()
            trainer = cls(cfg)
            trainer.fit()
            done.write_text(json.dumps({"minutes": (time.time() - t0) / 60, "epochs": trainer.history}, default=float))
        histories[arm] = json.loads(done.read_text())
        last = histories[arm]["epochs"][-1]
        print(f"{arm}: {len(histories[arm]['epochs']) - 1} epochs, {histories[arm]['minutes']:.1f} min, "
              f"val AP {last['AP']:.4f}", flush=True)
    return histories


def sources(args):
    """INT8 sources: each QAT arm, and PTQ (the FP32 arm calibrated, default policy)."""
    return [f"qat_{p}" for p in args.policies] + ["ptq"]


def export_files(args, out):
    from rtdetr_edge.export import export

    files = {}
    for runtime, (fmt, form, _) in RUNTIMES.items():
        for src in filter(lambda s: wanted(runtime, s), sources(args)):
            path = out / "exports" / f"{src}_{fmt}_{form}"
            if not (path / "manifest.json").is_file():
                t0 = time.time()
                weights = out / ("fp32" if src == "ptq" else src) / "best.pt"
                export(weights, fmt, precision="int8", int8_form=form, calib=args.calib, out=path, force=True,
                       **({"policy": "default"} if src == "ptq" else {}))
                print(f"exported {path.name} in {time.time() - t0:.0f} s", flush=True)
            files[(runtime, src)] = path
    return files


def evaluate_all(models, test, out, n_test):
    """{name: (metrics, matches)} on the first `n_test` images of the test split (image i is the same for any
    split size: synth.render_image); matches cached as pickles (numpy only)."""
    import pickle

    from rtdetr_edge.cocoeval import evaluate_runtime
    from rtdetr_edge.data.coco import CocoDetection, resolve_coco_dir

    ann, images = resolve_coco_dir(test, "val")
    dataset = CocoDetection(ann, images)
    dataset.images = dataset.images[:n_test]
    results = {}
    for name, make in models.items():
        cache = out / f"eval{n_test}" / (name.replace(" ", "_").replace("/", "_") + ".pkl")
        if not cache.is_file():
            t0 = time.time()
            m = evaluate_runtime(make(), dataset, matches=True)
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(pickle.dumps({"AP": m["AP"], "AP50": m["AP50"], "matches": m["matches"]}))
            print(f"{name}: AP {m['AP']:.4f} ({time.time() - t0:.0f} s, {len(dataset)} images)", flush=True)
        results[name] = pickle.loads(cache.read_bytes())
    return results


def ab_setup(args) -> tuple:
    """What an A/B benchmark of two INT8 graphs starts with (int8_activations.py, value_maps.py): the CPU's
    facts (printed), the --work folder, the model's input size, and --test generated images at that size (seed
    1007, a seed no model saw; made once)."""
    from rtdetr_edge.data.synth import generate
    from rtdetr_edge.runtime.pytorch import TorchRuntime
    from rtdetr_edge.sysinfo import cpu_info, cpu_line
    from rtdetr_edge.zoo import resolve_weights

    cpu = cpu_info()
    print(cpu_line(cpu), flush=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    size = TorchRuntime(str(resolve_weights(args.weights))).imgsz[0]
    test = work / f"test{size}"
    if not test.is_dir():
        generate(test, 0, args.test, size, seed=1007)
    return cpu, work, size, test


class Bootstrap:
    """apstats.paired_bootstrap for many models on one set, each model's AP computed once per resample (the
    same seeded resamples for every pair, so a pair's interval is exactly paired_bootstrap's)."""

    def __init__(self, n_images, resamples, seed=0, level=0.95):
        import numpy as np

        rng = np.random.default_rng(seed)
        self.counts = [np.bincount(rng.integers(0, n_images, n_images), minlength=n_images) for _ in range(resamples)]
        self.level, self.aps = level, {}

    def resampled(self, name, matches):
        import numpy as np

        from rtdetr_edge.apstats import average_precision

        if name not in self.aps:
            self.aps[name] = np.array([average_precision(matches, c) for c in self.counts])
        return self.aps[name]

    def compare(self, ev, ref, art, limit):
        """AP(ref) - AP(art) in points with its interval and the gate's verdict at `limit` points."""
        import numpy as np

        from rtdetr_edge.apstats import average_precision, gate

        drops = self.resampled(ref, ev[ref]["matches"]) - self.resampled(art, ev[art]["matches"])
        lo, hi = np.quantile(drops, [(1 - self.level) / 2, 1 - (1 - self.level) / 2])
        stats = {"drop": average_precision(ev[ref]["matches"]) - average_precision(ev[art]["matches"]),
                 "lo": float(lo), "hi": float(hi), "n_images": ev[ref]["matches"].n_images}
        verdict = gate(stats, limit / 100) if limit is not None else {}
        return {"drop": 100 * stats["drop"], "lo": 100 * stats["lo"], "hi": 100 * stats["hi"],
                "sd": 100 * float(drops.std(ddof=1)), "limit": limit, "gate": verdict.get("status"),
                "images_to_resolve": verdict.get("images_to_resolve")}


def wanted(runtime, src):
    """TensorRT's s8s8 file is slow on onnxruntime (docs/int8.md): measured for the default QAT arm only."""
    return not runtime.startswith("tensorrt") or src == "qat_default"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="shapes", help="the start of every arm (default: the shipped model)")
    ap.add_argument("--train", type=int, default=200, help="training images")
    ap.add_argument("--val", type=int, default=200, help="validation images (pick best.pt)")
    ap.add_argument("--test", type=int, default=1500, help="test images (every AP reported)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--seed", type=int, default=7, help="data and training seed (the shipped model saw seed 0)")
    ap.add_argument("--calib", default="shapes-64")
    ap.add_argument("--policies", nargs="+", default=["default", "all"], help="one QAT arm per policy")
    ap.add_argument("--resamples", type=int, default=300, help="bootstrap resamples (each model's AP once per resample)")
    ap.add_argument("--out", default="runs/equal")
    ap.add_argument("--doc", default=str(ROOT / "docs" / "equal_schedule"))
    args = ap.parse_args()

    from rtdetr_edge.data.synth import generate
    from rtdetr_edge.runtime.base import load_runtime
    from rtdetr_edge.runtime.pytorch import TorchRuntime
    from rtdetr_edge.sysinfo import cpu_info, cpu_line

    cpu = cpu_info()
    print(cpu_line(cpu), flush=True)
    start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data, test = out / "data", out / "test"
    if not data.is_dir():
        generate(data, args.train, args.val, args.imgsz, seed=args.seed)
    if not test.is_dir():
        generate(test, 0, args.test, args.imgsz, seed=args.seed + 1000)
    histories = train_arms(args, data, out)
    files = export_files(args, out)
    models = {"fp32 torch": lambda: TorchRuntime(str(out / "fp32" / "best.pt"))}
    for p in args.policies:
        models[f"qat_{p} torch"] = lambda p=p: TorchRuntime(str(out / f"qat_{p}" / "best.pt"))
    for (runtime, src), path in files.items():
        models[f"{src} {runtime}"] = lambda path=path: load_runtime(path)
    ev = evaluate_all(models, test, out, args.test)

    boot = Bootstrap(ev["fp32 torch"]["matches"].n_images, args.resamples)
    fp32 = ev["fp32 torch"]
    rows = [{"model": "FP32, fine-tuned like QAT (PyTorch)", "AP": fp32["AP"], "AP50": fp32["AP50"]}]
    for p in args.policies:
        e = ev[f"qat_{p} torch"]
        rows.append({"model": f"QAT policy {p}, fake-quant (PyTorch)", "source": f"qat_{p}", "AP": e["AP"],
                     "AP50": e["AP50"], "vs_fp32": boot.compare(ev, "fp32 torch", f"qat_{p} torch", 0.3)})
    for runtime, (fmt, form, limit) in RUNTIMES.items():
        for src in filter(lambda s: wanted(runtime, s), sources(args)):
            name = f"{src} {runtime}"
            label = "PTQ (policy default)" if src == "ptq" else f"QAT policy {src[4:]}"
            row = {"model": f"{label}, INT8 {runtime} ({fmt} {form})", "runtime": runtime, "source": src,
                   "AP": ev[name]["AP"], "AP50": ev[name]["AP50"], "vs_fp32": boot.compare(ev, "fp32 torch", name, limit)}
            if src == "qat_default" and f"ptq {runtime}" in ev:  # QAT >= PTQ: QAT's AP minus PTQ's (positive: QAT ahead)
                row["qat_minus_ptq"] = boot.compare(ev, name, f"ptq {runtime}", None)
            rows.append(row)
    result = {"cpu": cpu, "python": platform.python_version(), "args": vars(args), "minutes": (time.time() - start) / 60,
              "training": histories, "rows": rows}
    doc = Path(args.doc)
    doc.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str))
    doc.with_suffix(".md").write_text(markdown(args, cpu, histories, rows))
    for r in rows:
        v = r.get("vs_fp32")
        print(f"{r['model']:52s} AP {r['AP']:.4f}" + (f"  drop {v['drop']:+.2f} [{v['lo']:+.2f}, {v['hi']:+.2f}] "
                                                         f"-> {v['gate']}" if v else ""), flush=True)
    print(f"wrote {doc.with_suffix('.md')}")


def markdown(args, cpu, histories, rows) -> str:
    cmd = (f"python benchmarks/equal_schedule.py --weights {args.weights} --train {args.train} --val {args.val} "
           f"--test {args.test} --epochs {args.epochs} --seed {args.seed} --policies {' '.join(args.policies)}")
    h = {arm: histories[arm]["epochs"] for arm in histories}
    lines = ["# INT8 against an equally trained FP32 model", "",
             f"`{cmd}` on {cpu.get('model', 'this CPU')} ({', '.join(cpu.get('features', []))}).", "",
             f"Every arm starts from `{args.weights}` and runs QAT's trainer with one config ({args.epochs} epochs over "
             f"{args.train} generated images, lr 1e-5, EMA, batch 4, distillation on); each QAT arm adds its "
             f"policy's INT8 quantizers (7-bit weights; policies {', '.join(args.policies)}). best.pt is picked on {args.val} validation images; every AP "
             f"below is on {args.test} separate test images (seed {args.seed + 1000}), with a paired bootstrap 95% "
             f"interval over them ({args.resamples} resamples).", "",
             "| arm | start (val AP) | after each epoch (val AP) | minutes |", "|---|---|---|---|"]
    for arm in h:
        e = h[arm]
        lines.append(f"| {arm} | {e[0]['AP']:.4f} | {', '.join('%.4f' % r['AP'] for r in e[1:])} | "
                     f"{histories[arm]['minutes']:.1f} |")
    lines += ["", "| model | test AP | AP50 | ΔAP vs FP32 [95% interval], points | target | gate | QAT ahead of PTQ "
              "[95% interval], points |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        v, qp = r.get("vs_fp32"), r.get("qat_minus_ptq")
        drop = f"{v['drop']:+.2f} [{v['lo']:+.2f}, {v['hi']:+.2f}]" if v else "-"
        gate = (v["gate"] + (f" (~{v['images_to_resolve']:,} images would)" if v.get("images_to_resolve") else "")
                if v else "-")
        ahead = f"{qp['drop']:+.2f} [{qp['lo']:+.2f}, {qp['hi']:+.2f}]" if qp else ""
        lines.append(f"| {r['model']} | {r['AP']:.4f} | {r['AP50']:.4f} | {drop} | "
                     f"{'≤ %.1f' % v['limit'] if v and v['limit'] is not None else '-'} | {gate} | {ahead} |")
    lines += ["", "ΔAP is the FP32 model's AP minus the row's (positive: the row loses). \"QAT ahead of PTQ\" is the "
              "QAT file's AP minus the PTQ file's on the same runtime (positive: QAT better)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
