"""`export`: one checkpoint -> one verified bundle (artifacts, manifest.json, golden.npz).

One file per format (onnx.py, openvino.py, tflite.py), each with one public `write` function; the
format registry (config.py) states what each supports, and anything else is refused by looking it up.
plan.py resolves an export once (recipe, caller, refusals, tolerances); `export()` carries it out.
Adding a format is a new entry and a new file; it does not touch the model.
"""

import importlib
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import vocab
from ..errors import UserError
from .config import FORMATS, INT8_GOLDEN, RAW_DIR, ExportConfig, Format, get_format  # noqa: F401  (the API)

log = logging.getLogger("rtdetr_edge")


def writer(fmt: str):
    """The format file's `write(module, path, example_inputs, cfg, raw) -> facts`, imported when used."""
    return importlib.import_module(f"{__package__}.{fmt}").write


def write_artifact(model, cfg: ExportConfig, folder, raw=False, fp32_file=None) -> dict:
    """Export `model` (deploy form, eval) into `folder` as the format's artifact file; returns converter
    facts. raw=True writes the twin that outputs scores/boxes before top-k (what parity compares).
    `fp32_file`: TFLite INT8 only, the same network's FP32 .tflite already written (not converted again)."""
    import torch

    from ..model.postprocess import DeployModel
    from .onnx import RawOutputs

    h, w = model.imgsz
    n = 2 if cfg.dynamic_batch else cfg.batch
    x = torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(0))
    sizes = torch.tensor([[w, h]] * n, dtype=torch.int64)
    module = (RawOutputs(model) if raw else DeployModel(model)).eval()
    example = (x,) if raw else (x, sizes)
    path = Path(folder) / FORMATS[cfg.format].artifact
    path.parent.mkdir(parents=True, exist_ok=True)
    if cfg.precision == "int8":
        from .int8 import write

        return write(module, model, path, example, cfg, raw=raw, fp32_file=fp32_file)
    return writer(cfg.format)(module, path, example, cfg, raw=raw)


def export(weights=None, format=None, *, target=None, plan=None, **options) -> Path:
    """Export a checkpoint to a bundle folder; returns its path. A failed export leaves nothing behind.

    `export("w.pt", "onnx", precision="fp32", out=...)`, or with `target` ("jetson-orin-nano@jp6.2", a YAML
    file, or a resolved targets.Target): its recipe fills what is not given, every refusal the CLI makes is
    made here too (plan.plan_export), the written graph is checked against its runtime before the bundle is
    kept, and TensorRT targets get their engine build files. `plan=` takes an ExportPlan resolved before."""
    from .plan import plan_export

    if plan is None:
        plan = plan_export(target, layer="call", weights=weights, format=format, **options)
    elif weights is not None or format is not None or target is not None or options:
        raise TypeError("export(plan=...) takes nothing else: the plan holds every setting")
    return export_plan(plan)


def export_plan(plan) -> Path:
    """Carry out a resolved ExportPlan."""
    from ..bundle import GOLDEN, PREPROCESSING, is_bundle, versions, write_manifest
    from ..fsutil import atomic_dir
    from ..model.checkpoint import load_model
    from .bundle import golden_images, golden_outputs
    from .plan import bundle_path

    cfg, target = plan.config, plan.target
    if not cfg.weights:
        raise UserError("--weights is required")
    fmt = FORMATS[cfg.format]
    model = load_model(cfg.weights, imgsz=cfg.imgsz, sampling=cfg.sampling).deploy()
    model.set_value_projection(fmt.value_projection)
    if cfg.precision == "int8":
        from .int8 import prepare_model

        model = prepare_model(model, cfg)
    elif getattr(model, "quant", None):
        log.warning("%s is a QAT (INT8 fake-quant) checkpoint exported at %s: the quantizers are left out, the "
                    "QAT-trained weights run in float", cfg.weights, cfg.precision)
        from ..quant.fakequant import disable_quantizers

        disable_quantizers(model)
    imgsz = model.imgsz
    if target is not None and target.recipe.variant != model.variant:
        log.info("the recipe %s was sized for %s; exporting %s as given", target.name, target.recipe.variant,
                 model.variant)
    out = bundle_path(cfg, model, target)
    with atomic_dir(out, force=cfg.force, replaceable=is_bundle) as tmp:
        facts = _reused(cfg, imgsz, "model", tmp) or _write(model, cfg, imgsz, tmp, "model")
        raw_facts = (_reused(cfg, imgsz, "raw", tmp / RAW_DIR) or _write(model, cfg, imgsz, tmp / RAW_DIR, "raw")) \
            if cfg.raw_twin else None
        n = 2 if cfg.dynamic_batch else cfg.batch
        if cfg.precision == "int8" and not (target and target.runtime.runtime == "tensorrt"):
            # INT8 parity wants more evidence than one image (trtexec's golden inputs stay one batch)
            n = max(n, INT8_GOLDEN)
        images, sizes = golden_images(imgsz, n)
        golden = golden_outputs(model, images, sizes)
        np.savez_compressed(tmp / GOLDEN, **golden)
        entry = {"format": fmt.name, "precision": cfg.precision, "sampling": cfg.sampling,
                 **({"value_projection": model.value_projection} if model.sampling == "grid_sample" else {})}
        settings = asdict(cfg)
        settings.update(imgsz=list(imgsz), out=str(out), weights=str(cfg.weights))
        manifest = {
            "producer": "rtdetr-edge export",
            "format": fmt.name, "artifact": fmt.artifact, "precision": cfg.precision, "sampling": cfg.sampling,
            # what the file holds, what the device runs, and the tolerances each must meet: verify and parity
            # read these and nothing else
            **plan.describe(),
            "artifacts": [{"kind": "model", "file": fmt.artifact, **entry, "produced_by": facts}] + (
                [{"kind": "raw", "file": f"{RAW_DIR}/{fmt.artifact}", **entry, "produced_by": raw_facts,
                  "outputs": "pred_scores [N,Q,C] sigmoid, pred_boxes [N,Q,4] cxcywh normalised"}]
                if cfg.raw_twin else []),
            "variant": model.variant, "num_classes": model.num_classes, "class_names": model.class_names,
            "weights": str(cfg.weights), "export_config": settings,
            "input": {"imgsz": list(imgsz), "batch": "dynamic" if cfg.dynamic_batch else cfg.batch,
                      "names": list(vocab.INPUT_NAMES),
                      "images": "float32 [N,3,H,W] RGB in [0,1]", "orig_target_sizes": "[N,2] (width, height)"},
            "outputs": {"labels": "[N,300] class index", "boxes": "[N,300,4] xyxy in original pixels",
                        "scores": "[N,300] sigmoid score, best first"},
            "preprocessing": PREPROCESSING, "converter": facts, "golden": GOLDEN,
            "versions": versions(*fmt.packages),
        }
        if cfg.precision == "int8":
            manifest["quantization"] = {"form": cfg.int8_form, **model.quant}
            if cfg.int8_float:
                manifest["quantization"]["float"] = cfg.int8_float
        if target is not None:
            manifest["target"] = _apply_target(tmp, model, target, cfg, manifest, golden)
        if cfg.integrations:
            from ..integrations import write_integrations

            manifest["integrations"] = write_integrations(tmp, cfg.integrations, target, manifest, golden)
        write_manifest(tmp, manifest)
    _remember(cfg, imgsz, out, facts, raw_facts)
    return out


# Artifacts this process has written, by everything that decides their bytes: a second export with the same
# weights file and settings (several targets that share an ONNX, as Orin and Thor do) copies the files out of
# the first, sealed bundle -- after checking them against its manifest -- instead of converting again.
# FP32/FP16 only: INT8 artifacts depend on calibration, and are always made anew.
_WRITTEN = {}


# settings that decide no byte of a format's file: litert-torch converts from PyTorch (no ONNX opset, no
# simplifier) at fixed shapes; the INT8 settings matter to INT8 artifacts only
_NOT_IN_FILE = {"tflite": ("opset", "simplifier", "dynamic_batch")}
_INT8_ONLY = ("policy", "calib", "int8_form", "int8_float")


def _artifact_key(cfg, imgsz, kind, precision=None):
    precision = precision or cfg.precision
    if precision == "int8":
        return None
    from ..zoo import resolve_weights

    weights = resolve_weights(cfg.weights)
    try:
        st = weights.stat()
    except OSError:
        return None
    # what decides the artifact's bytes (not where it goes, nor what else the bundle carries)
    ignored = {"weights", "out", "force", "integrations", "raw_twin", *_NOT_IN_FILE.get(cfg.format, ()), *_INT8_ONLY}
    settings = tuple((k, str(precision if k == "precision" else v)) for k, v in sorted(asdict(cfg).items())
                     if k not in ignored)
    return (str(weights.resolve()), st.st_mtime_ns, st.st_size, tuple(imgsz), settings, kind)


def _write(model, cfg, imgsz, folder, kind):
    """Convert. A TFLite FP16 or INT8 file starts from the FP32 file of the same weights and settings when
    this process wrote one: FP16 is that file with its weights cast, static INT8 quantizes the float network
    with its quantizers off (the same file)."""
    found = _written_files(cfg, imgsz, kind, precision="fp32") \
        if cfg.format == "tflite" and cfg.precision in ("fp16", "int8") else None
    if found is None:
        return write_artifact(model, cfg, folder, raw=kind == "raw")
    bundle, facts, files = found
    log.info("%s: %s from the FP32 %s artifact of %s", folder, cfg.precision, kind, bundle)
    if cfg.precision == "fp16":
        from .tflite import cast_fp16

        folder.mkdir(parents=True, exist_ok=True)
        return {**facts, **cast_fp16(files[0], folder / FORMATS["tflite"].artifact), "cast_from": str(bundle)}
    return write_artifact(model, cfg, folder, raw=kind == "raw", fp32_file=files[0])


def _remember(cfg, imgsz, bundle, facts, raw_facts):
    for kind, kind_facts in (("model", facts), ("raw", raw_facts)):
        key = _artifact_key(cfg, imgsz, kind)
        if key is not None and kind_facts is not None:
            _WRITTEN[key] = (Path(bundle), kind_facts)


def _reused(cfg, imgsz, kind, folder):
    """Copy an identical artifact out of a bundle this process wrote, when its files still match their
    sha256; returns the converter facts (marked as reused), or None."""
    found = _written_files(cfg, imgsz, kind)
    if found is None:
        return None
    bundle, facts, files = found
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copyfile(f, folder / f.name)
    log.info("%s: the same %s artifact as %s: copied, not converted again", folder, kind, bundle)
    return {**facts, "reused_from": str(bundle)}


def _written_files(cfg, imgsz, kind, precision=None):
    """(bundle, converter facts, [artifact files]) of an artifact this process wrote with these settings,
    when its files are still what its manifest says; else None."""
    from ..bundle import read_manifest, sha256

    key = _artifact_key(cfg, imgsz, kind, precision)
    if key is None or key not in _WRITTEN:
        return None
    bundle, facts = _WRITTEN[key]
    prefix = f"{RAW_DIR}/" if kind == "raw" else ""
    try:
        hashes = read_manifest(bundle)["sha256"]
    except UserError:
        return None
    stem = Path(FORMATS[cfg.format].artifact).stem
    files = [n for n in hashes if (n.startswith(prefix) and "/" not in n[len(prefix):]
                                   and Path(n).stem == stem)]
    if not files or any(not (bundle / n).is_file() or sha256(bundle / n) != hashes[n] for n in files):
        return None
    return bundle, facts, [bundle / n for n in files]


def _apply_target(folder, model, target, cfg, manifest, golden) -> dict:
    """Check the written graphs against the target's runtime (a violation aborts the export: nothing is kept),
    add the device files, and return the manifest's `target` entry."""
    from .check import check_onnx_report, graph_facts

    entry = target.describe()
    entry["export_settings"] = {k: v for k, v in asdict(cfg).items() if k not in ("weights", "out", "force")}
    if cfg.format == "onnx":
        reports = [check_onnx_report(folder / (RAW_DIR if kind == "raw" else "") / FORMATS["onnx"].artifact,
                                     target.runtime) for kind in ("model", "raw") if kind == "model" or cfg.raw_twin]
        bad = [v for r in reports for v in r["violations"]]
        if bad:  # the model and its raw twin mostly break the same rules: each rule once
            seen = list(dict.fromkeys(b.split(": ", 1)[1] for b in bad))
            more = f" (and {len(seen) - 3} more)" if len(seen) > 3 else ""
            raise UserError(f"--target {target.spec}: {'; '.join(seen[:3])}{more}; nothing was written")
        facts = graph_facts(folder / FORMATS["onnx"].artifact)
        entry["graph_check"] = {"passed": all(r["passed"] for r in reports), "runtime": reports[0]["runtime"],
                                "files": {r["file"] if i == 0 else f"{RAW_DIR}/{r['file']}": r["rules"]
                                          for i, r in enumerate(reports)},
                                "opset": facts["opset"], "nodes": facts["nodes"], "ops": facts["ops"]}
    else:  # OpenVINO IR and TFLite: their converters emit only what their runtime runs
        entry["graph_check"] = {"passed": None, "runtime": target.runtime.name,
                                "why_not": f"{cfg.format}: written by its runtime's own converter; the recipe's "
                                           f"format and precision were checked against the device"}
    if target.runtime.runtime == "tensorrt":
        from .jetson import write_device_files

        entry["engine"] = write_device_files(folder, model, target, manifest, golden)
    if target.device.cpu_features_at_runtime and cfg.format == "openvino":
        from ..runtime.openvino import OpenVinoRuntime
        from ..sysinfo import cpu_info

        runtime = OpenVinoRuntime(folder / FORMATS["openvino"].artifact, {"precision": cfg.precision,
                                                                        "input": manifest["input"]})
        entry["export_machine"] = {"cpu": cpu_info(), "openvino_ran": runtime.effective_precision}
    return entry
