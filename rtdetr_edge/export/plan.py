"""One export plan, resolved once: what to build, for which device, checked against it, with the tolerances
its parity must meet. The CLI, the library's `export()`, and through the manifest `verify` and `parity` all
use this one plan; nothing works a setting out again.

Layers, lowest first: the ExportConfig defaults, the target's recipe (with its per-runtime overrides), then
what the caller set (the CLI's options or the API's keywords). Every refusal lives here:

- a TensorRT target exports an FP32 ONNX and builds the engine's precision on the device, so any
  `precision` but int8 (a Q/DQ ONNX for an INT8 engine) is refused;
- a precision the device or its runtime cannot run is refused (jetson-nano has no INT8);
- format, DLA, policy, calibration list and tolerances are checked against the device
  (`targets.check_target`); opset and sampling are checked on the written graph, which names the node.

Precision means two things and the plan keeps both: `artifact_precision` is what the file holds,
`runtime_precision` what the device runs (a TensorRT FP16 engine is built from an FP32 ONNX).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import UserError

# keys the caller may set that are not recipe settings (never reported as overriding the recipe)
NOT_RECIPE = ("weights", "out", "force")


@dataclass(frozen=True)
class ExportPlan:
    config: object  # ExportConfig, validated
    target: Optional[object]  # targets.Target, with the caller's precision applied
    origin: dict  # field -> the layer that set it ("default" when no layer did)
    messages: tuple = ()  # "--precision int8 overrides the recipe's fp16 (FILE)"
    artifact_precision: str = "fp32"
    runtime_precision: str = "fp32"
    # the tolerances a check of the artifact (on any machine) and of what the device runs must meet
    tolerances: dict = field(default_factory=dict)  # {"artifact": {...}, "runtime": {...}}

    def describe(self) -> dict:
        """The plan as the manifest records it."""
        return {"artifact_precision": self.artifact_precision, "runtime_precision": self.runtime_precision,
                "tolerances": self.tolerances, "settings_from": dict(sorted(self.origin.items()))}


def _option(key):
    return "--" + key.replace("_", "-")


def plan_export(target=None, layer="cli", **given) -> ExportPlan:
    """Resolve an export once. `target`: None, "NAME[@KEY]", a YAML path, or a resolved targets.Target;
    `given`: ExportConfig fields the caller set (None = not set); `layer`: what to call the caller in
    messages and in `origin` ("cli" or "call")."""
    from ..compare import tolerances_for
    from ..integrations import check_integrations
    from .config import ExportConfig

    given = {k: v for k, v in given.items() if v is not None}
    if target is None:
        cfg, origin = ExportConfig.resolve(**{layer: given})
        check_integrations(cfg.integrations, cfg.format, None)
        tol = _format_tolerances(cfg)
        return ExportPlan(cfg, None, _with_defaults(origin), (), cfg.precision, cfg.precision,
                          {"artifact": tol, "runtime": tol})
    from ..targets import Target, check_target, resolve

    t = target if isinstance(target, Target) else resolve(str(target))
    precision = given.get("precision")
    if precision not in (None, "int8") and t.runtime.runtime == "tensorrt":
        raise UserError(f"--precision {precision}: a TensorRT target exports an FP32 ONNX and builds the engine's "
                        f"precision on the device ({t.precision}, from the recipe {t.recipe_file}); --precision "
                        f"int8 exports a Q/DQ ONNX for an INT8 engine; write your own recipe for anything else")
    if precision is not None and precision != t.precision:
        check_target(t, dict(t.settings, precision=precision), graph_checked=True)
        t = t.with_settings(precision=precision)
    recipe = t.export_settings()
    messages = tuple(f"{_option(k)} {v} overrides the recipe's {recipe[k]} ({t.recipe_file})"
                     for k, v in given.items()
                     if k not in NOT_RECIPE and recipe.get(k) is not None and recipe[k] != v)
    if given.get("dynamic_batch"):
        recipe["batch"] = None
    if given.get("batch") is not None:
        recipe["dynamic_batch"] = None
    merged = dict(t.settings, **{k: given[k] for k in ("format", "sampling", "opset") if k in given})
    if given.get("dynamic_batch"):
        merged["batch"] = "dynamic"
    check_target(t, merged, graph_checked=True)  # format, DLA, INT8 data; opset and sampling: the written graph
    cfg, origin = ExportConfig.resolve(recipe=recipe, **{layer: given})
    check_integrations(cfg.integrations, cfg.format, t.runtime.runtime)
    runtime_tol = t.tolerances()
    artifact_tol = runtime_tol if cfg.precision == t.precision else tolerances_for(
        cfg.precision, t.runtime.tolerances.get(cfg.precision))
    return ExportPlan(cfg, t, _with_defaults(origin), messages, cfg.precision, t.precision,
                      {"artifact": artifact_tol, "runtime": runtime_tol})


def _with_defaults(origin) -> dict:
    from dataclasses import fields

    from .config import ExportConfig

    return {f.name: origin.get(f.name, "default") for f in fields(ExportConfig)}


# without a target, an artifact's tolerances are those of the runtime that reads its format by default
DEFAULT_RUNTIME_OF_FORMAT = {"onnx": "onnxruntime", "openvino": "openvino", "tflite": "tflite-xnnpack"}


def _format_tolerances(cfg) -> dict:
    from ..compare import tolerances_for
    from ..targets import runtime_facts

    facts, _ = runtime_facts(DEFAULT_RUNTIME_OF_FORMAT[cfg.format])
    return tolerances_for(cfg.precision, facts.tolerances.get(cfg.precision))


def bundle_path(cfg, model, target) -> Path:
    """--out, or exports/VARIANT_HxW_(TARGET | FORMAT_PRECISION)."""
    if cfg.out:
        return Path(cfg.out)
    h, w = model.imgsz
    return Path("exports") / (f"{model.variant}_{h}x{w}_" +
                              (f"{target.name}" if target else f"{cfg.format}_{cfg.precision}"))
