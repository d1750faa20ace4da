"""`verify`: the check a user runs on the device before trusting a bundle. Device side: no PyTorch.

Runs what the device runs -- the bundle's artifact (ONNX / OpenVINO IR / TFLite), a TensorRT engine built
from it (`engine=`), or outputs trtexec wrote for the golden inputs (`outputs=`, from run_golden.sh, for
JetPacks whose Python cannot install rtdetr-edge) -- on the bundle's golden inputs, and compares with the
golden outputs stored at export under the recipe's tolerances. A file that differs from its sha256 is a
failure too (exit 1), reported beside the numbers so a swapped or damaged artifact shows how far off it is.
"""

import json
from pathlib import Path

import numpy as np

from .compare import check, compare_raw, compare_topk, tolerances_for, validate_tolerances
from .errors import UserError

OUTPUT_NAMES = ("labels", "boxes", "scores")


def read_outputs(path) -> dict:
    """Outputs for the golden inputs: trtexec's --exportOutput JSON ([{name, dimensions, values}]) or an
    .npz with labels/boxes/scores."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--outputs {path}: no such file")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise UserError(f"--outputs {path}: not a readable .npz ({e})") from None
    else:
        try:
            entries = json.loads(path.read_text())
            out = {e["name"]: np.asarray(e["values"], dtype=np.float64).reshape(
                [int(d) for d in str(e["dimensions"]).split("x")]) for e in entries}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise UserError(f"--outputs {path}: not trtexec --exportOutput JSON ({type(e).__name__}: {e})") from None
    missing = [n for n in OUTPUT_NAMES if n not in out]
    if missing:
        raise UserError(f"--outputs {path}: no {', '.join(missing)} (has {', '.join(out) or 'nothing'})")
    return {"labels": out["labels"].astype(np.int64), "boxes": out["boxes"].astype(np.float32),
            "scores": out["scores"].astype(np.float32)}


def verify(bundle, engine=None, outputs=None, tolerances=None) -> dict:
    """Verify one bundle on this machine; returns the report with `ok`."""
    from .bundle import artifact, golden_inputs, load_golden, problems, read_manifest
    from .runtime.base import load_runtime

    bundle = Path(bundle)
    if not bundle.is_dir():
        raise UserError(f"{bundle}: not a bundle folder")
    if engine is not None and outputs is not None:
        raise UserError("--engine and --outputs exclude each other: give one")
    manifest = read_manifest(bundle)
    target = manifest.get("target") or {}
    damaged = problems(bundle, manifest)
    golden = load_golden(bundle)
    x, sizes = golden_inputs(golden)
    if engine is not None or outputs is not None:  # what the device built and ran: the target's precision
        ran, precision = (f"TensorRT engine {Path(engine).name}" if engine else f"outputs {Path(outputs).name}"), \
            target.get("precision", manifest.get("precision", "fp32"))
    else:
        ran, precision = f"{manifest['format']} {artifact(manifest)['file']}", manifest.get("precision", "fp32")
    base = target.get("tolerances") if precision == target.get("precision") else None
    tol = tolerances_for(precision, {**(base or {}), **validate_tolerances(tolerances or {})})
    report = {"bundle": str(bundle), "ran": ran, "precision": precision, "target": target.get("target"),
              "tolerances": tol, "files": "ok" if not damaged else damaged}
    metrics = {}
    if outputs is not None:
        art = read_outputs(outputs)
    else:
        runtime = load_runtime(engine or bundle, verify_files=False)
        if hasattr(runtime, "effective_precision"):
            report["runtime_precision"] = runtime.effective_precision
        labels, boxes, scores = runtime.infer(x, sizes)
        art = {"labels": labels, "boxes": boxes, "scores": scores}
        if engine is None and artifact(manifest, "raw") is not None and "raw_scores" in golden:
            raw_scores, raw_boxes = load_runtime(bundle, kind="raw", verify_files=False).infer(x)
            metrics.update(compare_raw(golden["raw_scores"], golden["raw_boxes"], raw_scores, raw_boxes,
                                       manifest.get("precision")))
    n = len(golden["scores"])
    if any(len(art[k]) < n for k in OUTPUT_NAMES):
        raise UserError(f"outputs for {min(len(art[k]) for k in OUTPUT_NAMES)} images; the golden data has {n}")
    metrics.update(compare_topk(golden, {k: art[k][:n] for k in OUTPUT_NAMES}))
    broken = check(metrics, tol)
    if damaged:
        broken.insert(0, "files differ from the manifest: " + ", ".join(damaged))
    report.update(metrics=metrics, broken=broken, ok=not broken)
    return report


ROWS = [("raw_score_max", "score max (raw)", "{:.2e}", "raw_score_max"),
        ("raw_box_max", "box max (raw)", "{:.2e}", "raw_box_max"),
        ("queries_swapped", "queries swapped", "{:.3f}", "queries_swapped_max"),
        ("topk_score_max", "score max (top-k)", "{:.2e}", "topk_score_max"),
        ("top100_match", "top-100 match", "{:.3f}", "top100_match_min"),
        ("matched_box_px_max", "box px max", "{:.2e}", None)]


def rows(report) -> list:
    """(metric, value, limit, ok) for the table and the Markdown."""
    out = []
    broken = " ".join(report["broken"])
    for key, title, fmt, tol_key in ROWS:
        if key not in report["metrics"]:
            continue
        v = report["metrics"][key]
        limit = report["tolerances"].get(tol_key) if tol_key else None
        out.append((title, "-" if v is None else fmt.format(v), "-" if limit is None else f"{limit:g}", key not in broken))
    out.append(("files (sha256)", "ok" if report["files"] == "ok" else "differ", "ok", report["files"] == "ok"))
    return out
