"""The main job on fresh runs: `rtdetr_edge.quickstart.run` with different seeds (each seed generates its own
dataset, fine-tunes and runs QAT on it), one row per run with its exit status and every INT8 row's AP drop,
interval and gate verdict. Writes docs/quickstart_seeds.md (and .json).

    python benchmarks/quickstart_seeds.py --seeds 1 2 3 4 5 6 7 8 9 10 [--epochs 2 --qat-epochs 1] [--val 200]

At about 21-23 minutes per seed on 2 cores (alone) the table takes more than one sitting: `--append` keeps the rows
already in OUT.json (a seed run again replaces its row), and every row records the commit it ran.
`--from DIR` adds the row of a finished `rtdetr-edge quickstart --out DIR --seed N` (its quickstart.json and
parity report; the commit is this checkout's, so run it in the checkout that ran the command).
"""

import argparse
import json
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    ap.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (default: the quickstart's)")
    ap.add_argument("--qat-epochs", type=int, default=None, help="QAT epochs (default: the quickstart's)")
    ap.add_argument("--val", type=int, default=None, help="validation images (default: the quickstart's)")
    ap.add_argument("--gate", type=int, default=None, help="gate images (default: the quickstart's)")
    ap.add_argument("--formats", default="onnx,openvino,tflite")
    ap.add_argument("--out", default=str(ROOT / "docs" / "quickstart_seeds"))
    ap.add_argument("--append", action="store_true", help="keep the rows already in OUT.json")
    ap.add_argument("--from", dest="from_", nargs="+", default=[], metavar="DIR",
                    help="add the rows of finished `rtdetr-edge quickstart --out DIR` runs instead of running seeds")
    args = ap.parse_args()
    from rtdetr_edge.quickstart import QuickstartConfig, run
    from rtdetr_edge.sysinfo import cpu_info

    old = Path(args.out).with_suffix(".json")
    rows = json.loads(old.read_text())["runs"] if args.append and old.exists() else []
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"

    def add(result, rows):
        cfg = result["config"]
        seed = cfg["seed"]
        row = {"seed": seed, "commit": commit, "ok": result["ok"], "minutes": result["minutes"], "artifacts": [],
               "gate_images": cfg["gate_images"] or cfg["val_images"],
               **{k: result.get(k) for k in ("tuned_AP", "tuned_iterations", "qat_AP", "qat_iterations")}}
        for a in result["parity"]["artifacts"]:
            m = a["metrics"]
            iv = m.get("ap_drop_interval", {})
            row["artifacts"].append({"name": f"{a['format']} {a['precision']}", "AP": m.get("AP"),
                                     "torch_AP": m.get("torch_AP"), "drop": m.get("ap_drop"), "lo": iv.get("lo"),
                                     "hi": iv.get("hi"), "limit": a["tolerances"]["ap_drop_max"],
                                     "gate": (a.get("ap_gate") or {}).get("status"), "ok": a["ok"],
                                     "broken": a["broken"]})
        # a row is a seed and the images its gates had (rows before the gate images had none: 200 validation)
        same = lambda r: r["seed"] == seed and (r.get("gate_images") or 200) == row["gate_images"]  # noqa: E731
        print(json.dumps({"seed": seed, "ok": row["ok"], "minutes": round(row["minutes"], 1)}), flush=True)
        return sorted([r for r in rows if not same(r)] + [row], key=lambda r: (r.get("gate_images") or 200, r["seed"]))

    for folder in args.from_:  # a finished `rtdetr-edge quickstart --out DIR`
        result = json.loads((Path(folder) / "quickstart.json").read_text())
        result["parity"] = json.loads((Path(folder) / "parity" / "parity.json").read_text())
        rows = add(result, rows)
        write(args, rows, cpu_info())
    for seed in [] if args.from_ else args.seeds:
        work = Path(tempfile.mkdtemp(prefix=f"qs{seed}-"))
        given = {"epochs": args.epochs, "qat_epochs": args.qat_epochs, "val_images": args.val,
                 "gate_images": args.gate}
        cfg = QuickstartConfig(out=str(work), seed=seed, formats=tuple(args.formats.split(",")),
                               **{k: v for k, v in given.items() if v is not None})
        rows = add(run(cfg), rows)
        shutil.rmtree(work, ignore_errors=True)
        write(args, rows, cpu_info())


def write(args, rows, cpu):
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"cpu": cpu, "python": platform.python_version(),
                                                    "args": vars(args), "runs": rows}, indent=2))
    passed = sum(r["ok"] for r in rows)
    lines = ["# The quickstart on fresh runs", "",
             f"`python benchmarks/quickstart_seeds.py --seeds {' '.join(str(r['seed']) for r in rows)}"
             + "".join(f" --{k.replace('_', '-')} {v}" for k, v in (("epochs", args.epochs),
                                                                    ("qat_epochs", args.qat_epochs), ("val", args.val),
                                                                    ("gate", args.gate))
                       if v is not None) + f"` on {cpu.get('model', 'this CPU')} "
             f"({', '.join(cpu.get('features', []))}). Each seed generates its own data, fine-tunes, runs QAT, "
             "exports and measures parity, as `rtdetr-edge quickstart` does.", "",
             f"**{passed} of {len(rows)} runs passed** (exit 0).", "",
             "| seed | commit | gate images | result | minutes | fine-tuned AP (iterations) | QAT fake-quant AP "
             "(iterations) | INT8 rows: AP drop [95% interval] vs limit -> gate |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = "; ".join(f"{a['name']} {a['drop'] * 100:+.2f} [{a['lo'] * 100:+.2f}, {a['hi'] * 100:+.2f}] pts vs "
                          f"{a['limit'] * 100:.1f} -> {a['gate']}" for a in r["artifacts"]
                          if a["name"].endswith("int8") and a["drop"] is not None)
        ap = lambda k: f"{r[k]:.3f} ({r[k.replace('AP', 'iterations')]})" if r.get(k) is not None else "-"  # noqa: E731
        # rows before the gates had their own images were measured on the 200 validation images
        gate = r.get("gate_images") or "200 (validation)"
        lines.append(f"| {r['seed']} | {r.get('commit', '-')} | {gate} | {'pass' if r['ok'] else 'FAIL'} | {r['minutes']:.1f} | "
                     f"{ap('tuned_AP')} | "
                     f"{ap('qat_AP')} | {cells} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
