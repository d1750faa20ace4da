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

from .compare import compare_raw, compare_topk, evaluate, validate_tolerances
from .errors import UserError

from .vocab import OUTPUT_NAMES


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
    labels, boxes, scores = (np.asarray(out[k]) for k in OUTPUT_NAMES)
    if not (labels.ndim == 2 and scores.shape == labels.shape and boxes.shape == (*labels.shape, 4)):
        raise UserError(f"--outputs {path}: shapes labels {list(labels.shape)}, boxes {list(boxes.shape)}, scores "
                        f"{list(scores.shape)}; expected [N,K], [N,K,4], [N,K]")
    return {"labels": out["labels"].astype(np.int64), "boxes": out["boxes"].astype(np.float32),
            "scores": out["scores"].astype(np.float32)}


def verify(bundle, engine=None, outputs=None, tolerances=None, expect_digest=None) -> dict:
    """Verify one bundle on this machine; returns the report with `ok`. `expect_digest`: the manifest digest
    the user was given with the bundle (from its sender, by another channel): the manifest's sha256 and
    digest catch accidents, a pinned digest also catches someone who rewrote the manifest."""
    from .bundle import GOLDEN, artifact, golden_inputs, load_golden, planned, problems, read_manifest
    from .runtime.base import load_runtime

    import re

    if expect_digest is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", expect_digest.strip()):
        raise UserError(f"--expect-digest: 64 hex digits (manifest.json's digest), got {expect_digest!r}")
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise UserError(f"{bundle}: not a bundle folder")
    if engine is not None and outputs is not None:
        raise UserError("--engine and --outputs exclude each other: give one")
    manifest = read_manifest(bundle)
    target = manifest.get("target") or {}
    damaged = problems(bundle, manifest)
    try:
        golden = load_golden(bundle)
    except UserError as e:
        why = [d for d in damaged if d.startswith(GOLDEN + " ")]
        raise UserError(f"{e} -- {why[0]}: the copy is damaged or was edited" if why else str(e)) from None
    x, sizes = golden_inputs(golden)
    device_ran = engine is not None or outputs is not None  # what the device built and ran, or the artifact
    precision, tol = planned(manifest, "runtime" if device_ran else "artifact")
    if engine is not None:
        ran = f"TensorRT engine {Path(engine).name}"
    elif outputs is not None:
        ran = f"outputs {Path(outputs).name}"
    else:
        ran = f"{manifest['format']} {artifact(manifest)['file']}"
    tol = {**tol, **validate_tolerances(tolerances or {})}
    report = {"bundle": str(bundle), "ran": ran, "precision": precision, "target": target.get("target"),
              "tolerances": tol, "files": "ok" if not damaged else damaged,
              "raw_twin": artifact(manifest, "raw") is not None}
    metrics = {}
    if outputs is not None:
        art = read_outputs(outputs)
    else:
        runtime = load_runtime(engine or bundle, verify_files=False)
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
    metrics.update(compare_topk(golden, {k: art[k][:n] for k in OUTPUT_NAMES}, precision=precision))
    checks = evaluate(metrics, tol)
    if expect_digest is not None:
        pinned = manifest["digest"] == expect_digest.strip().lower()
        checks.append({"tolerance": "expect_digest", "metric": "digest", "value": manifest["digest"][:12] + "...",
                       "limit": expect_digest[:12] + "...", "kind": "equal", "ok": pinned,
                       "text": None if pinned else f"the manifest's digest {manifest['digest']} is not the pinned "
                                                   f"{expect_digest}"})
    checks.append({"tolerance": "files", "metric": "sha256", "value": "ok" if not damaged else "differ",
                   "limit": "ok", "kind": "equal", "ok": not damaged,
                   "text": None if not damaged else "files differ from the manifest: " + ", ".join(damaged)})
    broken = [c["text"] for c in checks if not c["ok"]]
    report.update(metrics=metrics, checks=checks, broken=broken, ok=not broken)
    return report


ROWS = {"digest": ("digest (pinned)", "{}"), "raw_score_max": ("score max (raw)", "{:.2e}"), "raw_box_max": ("box max (raw)", "{:.2e}"),
        "queries_swapped": ("queries swapped", "{:.3f}"), "topk_score_max": ("score max (top-k)", "{:.2e}"),
        "top100_match": ("top-100 match", "{:.3f}"), "sha256": ("files (sha256)", "{}")}
INFORMATIVE = {"matched_box_px_max": ("box px max", "{:.2e}")}  # measured, no tolerance


def rows(report) -> list:
    """(check, value, limit, ok) for the table, from the structured checks (and the measured-only rows)."""
    out = []
    for c in report["checks"]:
        title, fmt = ROWS.get(c["metric"], (c["metric"], "{}"))
        value = c["value"] if isinstance(c["value"], str) else fmt.format(c["value"])
        limit = c["limit"] if isinstance(c["limit"], str) else f"{c['limit']:g}"
        out.append((title, value, limit, c["ok"]))
    for key, (title, fmt) in INFORMATIVE.items():
        v = report["metrics"].get(key)
        if key in report["metrics"]:
            out.append((title, "-" if v is None else fmt.format(v), "-", True))
    return out
