"""Devices and recipes as data: `devices/*.yaml`, `devices/runtimes/*.yaml`, `recipes/*.yaml`.

- A **runtime** file states what one runtime version reads: formats, precisions, the highest ONNX opset,
  the operators its parser cannot run (with the fix for ours), graph constraints and, for TensorRT, the
  trtexec flags that version has.
- A **device** profile states the hardware (memory, DLA cores, TF32, precisions), the runtime versions it
  covers under a key (`jp6.2`, `openvino`, ...) with a default, and its known pitfalls with their guards.
- A **recipe** states what to build for a device by default (format, precision, sampling, opset, batch,
  input size, simplifier, engine settings, tolerances), with per-runtime-key overrides.

A target is named `NAME` or `NAME@KEY` (`jetson-orin-nano@jp5.1`); NAME is a recipe, an alias of one
(`jetson`, `cpu`), or a YAML file of a recipe or a device (a device alone gets the recipe its runtime
implies). Every file is parsed into a typed model; a wrong key, type or value is one line naming the file
and the key (UserError, exit 2). Device side: pydantic and PyYAML only, no PyTorch.
"""

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from .errors import UserError
from .paths import DATA, data_dir  # noqa: F401  (DATA: the shipped folders, for callers)
from .vocab import (FORMATS, INT8_FLOATS, INT8_FORMS, INTEGRATIONS, OPSET_MAX, OPSET_MIN, PRECISIONS, SAMPLINGS,
                    SIMPLIFIERS)

GUARDS = ("no_tf32", "layernorm_fp32", "graph_check")
# what each runtime family reads, for a device file used alone as a target
RUNTIME_FORMAT = {"tensorrt": "onnx", "onnxruntime": "onnx", "openvino": "openvino", "tflite": "tflite"}

# Text from these files reaches file names, shell scripts, Python scripts and READMEs we generate: names are
# slugs (they become paths), prose is one printable line (it never becomes a command: scripts quote every
# value, and titles only reach comments), trtexec flags match a strict pattern, numbers are bounded.
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
OneLine = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*$", max_length=300)]
Version = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 .+_-]{0,40}$")]
# a file named by a recipe (a device, a policy, a calibration list): a name or a relative/absolute path, no
# control characters
FileRef = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]{1,255}$")]
# one trtexec flag; {mb} and {spec} are the only placeholders
TrtexecFlag = Annotated[str, Field(pattern=r"^--[A-Za-z][A-Za-z0-9]*(=[A-Za-z0-9_.:,{}-]*)?( --[A-Za-z][A-Za-z0-9]*"
                                           r"(=[A-Za-z0-9_.:,{}-]*)?)?$", max_length=100)]

Precision = Literal[PRECISIONS]
Format = Literal[FORMATS]
Sampling = Literal[SAMPLINGS]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trtexec(Strict):
    workspace: TrtexecFlag
    build_only: TrtexecFlag
    layer_precisions: Optional[TrtexecFlag] = None  # None: this trtexec cannot pin layer precisions
    no_tf32: Optional[TrtexecFlag] = None
    opt_level: Optional[TrtexecFlag] = None


class RuntimeFacts(Strict):
    kind: Literal["runtime"]
    name: Slug
    runtime: Literal["tensorrt", "openvino", "onnxruntime", "tflite"]
    version: Version
    formats: list[Format] = Field(min_length=1)
    precisions: list[Precision] = Field(min_length=1)
    max_opset: Optional[int] = Field(None, ge=7, le=30)
    unsupported_ops: list[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9]{0,40}$")]] = []
    fixes: dict[str, OneLine] = {}
    gridsample_max_opset: Optional[int] = Field(None, ge=7, le=30)
    topk_k_initializer: bool = False
    topk_k_max: Optional[int] = Field(None, ge=1, le=1 << 20)
    reduce_axes_initializer: bool = False
    int8_form: Optional[Literal[INT8_FORMS]] = None  # the INT8 artifact this runtime runs fastest
    # parity tolerances per precision for what this runtime runs (over compare.DEFAULT_TOLERANCES): TFLite's
    # static INT8 costs more accuracy than Q/DQ on TensorRT or OpenVINO
    tolerances: dict[Precision, dict[str, float]] = {}
    trtexec: Optional[Trtexec] = None
    notes: list[OneLine] = []


class DeviceRuntime(Strict):
    runtime: FileRef  # a shipped runtime name, or a runtime file beside the device file
    label: OneLine
    cuda: Optional[Version] = None
    python: Optional[Annotated[str, Field(pattern=r"^[<>=]*\d+(\.\d+){0,2}$")]] = None
    deepstream: Optional[Version] = None  # the DeepStream release for this JetPack (integrations/deepstream.py)


class Pitfall(Strict):
    id: Slug
    text: OneLine
    guard: Literal[GUARDS]


class Device(Strict):
    kind: Literal["device"]
    name: Slug
    title: OneLine
    family: Literal["jetson", "x86", "arm64"]
    gpu_arch: Optional[Slug] = None
    memory_gb: float = Field(gt=0, le=4096)
    dla_cores: int = Field(0, ge=0, le=8)
    tf32: bool = False
    precisions: list[Precision] = Field(min_length=1)
    runtimes: dict[Slug, DeviceRuntime] = Field(min_length=1, max_length=32)
    default_runtime: Slug
    cpu_features_at_runtime: bool = False
    pitfalls: list[Pitfall] = []


class Settings(Strict):
    """What a recipe (or one of its per-runtime overrides) may set."""
    format: Optional[Format] = None
    precision: Optional[Precision] = None
    sampling: Optional[Sampling] = None
    opset: Optional[int] = Field(None, ge=OPSET_MIN, le=OPSET_MAX)
    batch: Optional[Union[Annotated[int, Field(ge=1, le=64)], Literal["dynamic"]]] = None
    imgsz: Optional[Union[Annotated[int, Field(ge=32, le=4096)], Annotated[str, Field(max_length=12)]]] = None
    simplifier: Optional[Literal[SIMPLIFIERS]] = None
    workspace_mb: Optional[int] = Field(None, ge=64, le=1 << 20)
    dla: Optional[bool] = None
    tolerances: Optional[dict[str, float]] = None
    # INT8: the placement policy (recipes/policies/), the calibration list (calib/), the artifact form
    policy: Optional[FileRef] = None
    calib: Optional[FileRef] = None
    # what else the bundle carries for the device's serving stack (rtdetr_edge/integrations)
    integrations: Optional[list[Literal[INTEGRATIONS]]] = Field(None, max_length=len(INTEGRATIONS))
    raw_twin: Optional[bool] = None  # false: no raw/ twin in the bundle (small storage; top-k parity only)
    int8_form: Optional[Literal[INT8_FORMS]] = None
    int8_float: Optional[Literal[INT8_FLOATS]] = None  # OpenVINO INT8: its float layers' precision


class Recipe(Settings):
    kind: Literal["recipe"]
    name: Slug  # becomes the default bundle folder's name: a slug, never a path
    device: FileRef
    description: OneLine = ""
    variant: Slug = "rtdetrv2_r18vd"  # what the recipe was sized for (a note when the weights differ)
    aliases: list[Slug] = []
    overrides: dict[Slug, Settings] = {}


MODELS = {"runtime": RuntimeFacts, "device": Device, "recipe": Recipe, "settings": Settings}


def models() -> dict:
    return MODELS


def _where(loc) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _model_at(model, loc):
    """The pydantic model a nested key belongs to (runtimes.jp6.2.KEY -> DeviceRuntime), for its known keys."""
    import typing

    from pydantic import BaseModel

    t, skip = model, False
    for part in loc:
        if skip:  # a dict's key: the value type stays
            skip = False
            continue
        if not (isinstance(t, type) and issubclass(t, BaseModel)) or part not in t.model_fields:
            return model
        t = t.model_fields[part].annotation
        while typing.get_origin(t) is not None:  # Optional[...], Annotated[...], dict[K, V], list[V]
            origin, args = typing.get_origin(t), [a for a in typing.get_args(t) if a is not type(None)]
            if origin is dict:
                t, skip = args[1], True
            elif origin is list:
                t, skip = args[0], True
            else:
                t = args[0]
    return t if isinstance(t, type) and issubclass(t, BaseModel) else model


def _error_line(path, e, kind) -> str:
    """pydantic's first error as one line: FILE: KEY: what is wrong (what is allowed)."""
    first = e.errors()[0]
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        fields = _model_at(models()[kind], first["loc"][:-1]).model_fields
        msg = f"unknown key (known: {', '.join(fields)})"
    elif first["type"] == "missing":
        msg = "missing (required)"
    more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    return f"{path}: {_where(first['loc'])}: {msg}{more}"


def parse(path, kind=None):
    """Parse one YAML file into its model (kind from its `kind:` key, or the one expected)."""
    from pydantic import ValidationError

    from . import yamlfile

    path = Path(path)
    data = yamlfile.load(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of keys (kind: device|recipe|runtime, ...)")
    found = data.get("kind")
    if found not in ("device", "recipe", "runtime"):
        raise UserError(f"{path}: kind: must be one of device, recipe, runtime (got {found!r})")
    if kind is not None and found != kind:
        raise UserError(f"{path}: kind: expected {kind}, got {found}")
    try:
        return models()[found].model_validate(data)
    except ValidationError as e:
        raise UserError(_error_line(path, e, found)) from None


def _shipped(folder) -> dict:
    return {p.stem: p for p in sorted(data_dir(folder).glob("*.yaml"))}


def _by_name(name, folder, kind, base=None):
    """A shipped file by name, or a path (relative to `base`, the file that names it, or the cwd)."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        path = Path(name)
        if not path.is_absolute() and base is not None and (Path(base).parent / path).is_file():
            path = Path(base).parent / path
        return parse(path, kind), path
    shipped = _shipped(folder)
    if name not in shipped:
        raise UserError(f"unknown {kind} {name!r} (known: {', '.join(shipped)})")
    return parse(shipped[name], kind), shipped[name].resolve()


def runtime_facts(name, base=None):
    facts, path = _by_name(name, "devices/runtimes", "runtime", base)
    from .compare import validate_tolerances

    for precision, tol in facts.tolerances.items():
        validate_tolerances(tol, source=f"{path}: tolerances.{precision}")
    return facts, path


def device(name, base=None):
    return _by_name(name, "devices", "device", base)


@dataclass(frozen=True)
class Target:
    """A resolved target: the recipe's settings for one runtime key of one device."""
    name: str  # recipe name
    recipe: object
    recipe_file: Path
    device: object
    device_file: Path
    key: str  # runtime key (jp6.2, openvino, ...)
    runtime: object
    settings: dict  # the recipe's settings with the key's overrides applied (None: not set)

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.key}"

    @property
    def precision(self) -> str:
        """What runs on the device (the engine's precision for TensorRT)."""
        return self.settings["precision"]

    @property
    def guards(self) -> list:
        return sorted({p.guard for p in self.device.pitfalls})

    def export_settings(self) -> dict:
        """The recipe as ExportConfig fields (the artifact: TensorRT gets an FP32 ONNX and builds its own
        precision on the device)."""
        s = self.settings
        # TensorRT builds FP16 itself from an FP32 ONNX; INT8 it takes as a Q/DQ ONNX (explicit quantization)
        artifact_precision = "fp32" if self.runtime.runtime == "tensorrt" and s["precision"] != "int8" \
            else s["precision"]
        batch = s.get("batch")
        return {"format": s["format"], "precision": artifact_precision, "sampling": s["sampling"],
                "opset": s["opset"], "imgsz": s.get("imgsz"), "simplifier": s.get("simplifier"),
                "batch": None if batch in (None, "dynamic") else batch,
                "dynamic_batch": True if batch == "dynamic" else None,
                "integrations": tuple(s["integrations"]) if s.get("integrations") is not None else None,
                "raw_twin": s.get("raw_twin"),
                **({"policy": s.get("policy"), "calib": s.get("calib"),
                    "int8_form": s.get("int8_form") or self.runtime.int8_form, "int8_float": s.get("int8_float")}
                   if s["precision"] == "int8" else {})}

    def with_settings(self, **changes) -> "Target":
        """A copy with some settings changed (a Target is never changed in place)."""
        return replace(self, settings={**self.settings, **changes})

    def tolerances(self):
        """What the device runs must meet: the precision's defaults, the runtime's, then the recipe's."""
        from .compare import tolerances_for

        return tolerances_for(self.precision, {**self.runtime.tolerances.get(self.precision, {}),
                                               **(self.settings.get("tolerances") or {})})

    def describe(self) -> dict:
        d, r = self.device, self.runtime
        return {"target": self.spec, "recipe": self.name, "recipe_file": str(self.recipe_file),
                "device": d.name, "device_file": str(self.device_file), "title": d.title,
                "runtime_key": self.key, "runtime": r.name, "runtime_version": r.version,
                "runtime_label": d.runtimes[self.key].label, "precision": self.precision,
                "settings": {k: v for k, v in self.settings.items() if v is not None},
                "guards": self.guards, "pitfalls": [p.id for p in d.pitfalls],
                "max_opset": r.max_opset, "dla_cores": d.dla_cores, "memory_gb": d.memory_gb}


@functools.lru_cache(maxsize=None)
def _aliases() -> dict:
    """alias -> recipe name over the shipped recipes (read once per process)."""
    out = {}
    for name, path in _shipped("recipes").items():
        for alias in parse(path, "recipe").aliases:
            out[alias] = name
    return out


def _default_recipe(dev, dev_file, key):
    """A recipe for a device file given alone: what its runtime reads, its best precision that needs no
    calibration, the sampling its runtime can run, the highest opset up to 17."""
    facts, _ = runtime_facts(dev.runtimes[key].runtime, base=dev_file)
    fmt = RUNTIME_FORMAT[facts.runtime]
    usable = [p for p in ("fp16", "fp32") if p in dev.precisions and p in facts.precisions]
    if fmt == "onnx" and facts.runtime != "tensorrt":
        usable = ["fp32"]
    sampling = "gather" if "GridSample" in facts.unsupported_ops else "grid_sample"
    opset = min(17, facts.max_opset or 17)
    data = {"kind": "recipe", "name": dev.name, "device": str(dev_file), "format": fmt,
            "precision": usable[0] if usable else "fp32", "sampling": sampling, "opset": opset, "batch": 1,
            "description": f"derived from the device profile {dev_file}"}
    return models()["recipe"].model_validate(data)


def resolve(spec: str) -> Target:
    """`NAME[@KEY]` -> Target, cross-checked: the recipe's format, precision, sampling and opset against the
    device and the runtime version of KEY."""
    name, _, key = str(spec).partition("@")
    if not name:
        raise UserError(f"--target {spec!r}: give a target name (see `rtdetr-edge targets`)")
    if str(spec).endswith("@"):
        raise UserError(f"--target {spec}: give a runtime after '@' (`rtdetr-edge targets {name}` lists them), "
                        "or leave out '@' for the default")
    is_file = name.endswith((".yaml", ".yml")) or "/" in name
    if is_file:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"--target {name}: no such file")
        obj = parse(path)
        if isinstance(obj, models()["runtime"]):
            raise UserError(f"{path}: a runtime file is not a target (give a device or a recipe)")
        if isinstance(obj, models()["device"]):
            dev, dev_file = obj, path
            key = key or dev.default_runtime
            _check_key(dev, dev_file, key)
            rec, rec_file = _default_recipe(dev, dev_file, key), path
        else:
            rec, rec_file = obj, path
    else:
        shipped = _shipped("recipes")
        name = _aliases().get(name, name)
        if name not in shipped:
            raise UserError(f"--target: unknown target {name!r} (known: {', '.join(list(shipped) + sorted(_aliases()))}"
                            f"; or a YAML file)")
        rec_file = shipped[name].resolve()
        rec = parse(rec_file, "recipe")
    if not (is_file and isinstance(obj, models()["device"])):
        dev, dev_file = device(rec.device, base=rec_file)
        key = key or dev.default_runtime
        _check_key(dev, dev_file, key)
    for k in rec.overrides:
        if k not in dev.runtimes:
            raise UserError(f"{rec_file}: overrides.{k}: {dev.name} has no runtime {k!r} "
                            f"(it has {', '.join(dev.runtimes)})")
    facts, _ = runtime_facts(dev.runtimes[key].runtime, base=dev_file)
    settings = {f: getattr(rec, f) for f in models()["settings"].model_fields}
    if key in rec.overrides:
        settings.update({f: v for f, v in rec.overrides[key].model_dump().items() if v is not None})
    target = Target(rec.name, rec, rec_file, dev, dev_file, key, facts, settings)
    check_target(target)
    return target


def _check_key(dev, dev_file, key):
    if dev.default_runtime not in dev.runtimes:
        raise UserError(f"{dev_file}: default_runtime: {dev.default_runtime!r} is not one of its runtimes "
                        f"({', '.join(dev.runtimes)})")
    if key not in dev.runtimes:
        raise UserError(f"--target {dev.name}@{key}: {dev.name} has no runtime {key!r} "
                        f"(it has {', '.join(dev.runtimes)})")


def check_target(t: Target, settings=None, graph_checked=False):
    """The recipe's settings (or `settings`, after the user's flags) against the device and runtime: one
    line naming the file and key on a mismatch. graph_checked=True leaves sampling and opset to the check
    of the written graph (which names the node)."""
    s = dict(t.settings if settings is None else settings)
    where = f"{t.recipe_file}"
    r, d = t.runtime, t.device
    for key in ("format", "precision", "sampling", "opset"):
        if s.get(key) is None:
            raise UserError(f"{where}: {key}: missing (required in a recipe)")
    if s["format"] not in r.formats:
        raise UserError(f"{where}: format: {r.name} reads {', '.join(r.formats)}, not {s['format']}")
    if s["precision"] not in d.precisions or s["precision"] not in r.precisions:
        both = [p for p in d.precisions if p in r.precisions]
        raise UserError(f"{where}: precision: {s['precision']} is not available on {d.name} with {r.name} "
                        f"(available: {', '.join(both)})")
    if s["precision"] == "int8" and not r.int8_form:
        raise UserError(f"{where}: precision: {r.name} states no INT8 artifact form (int8_form)")
    if s.get("int8_form") and r.int8_form and s["int8_form"] != r.int8_form:
        raise UserError(f"{where}: int8_form: {r.name} runs the {r.int8_form} form, not {s['int8_form']}")
    if s["precision"] == "bf16":
        raise UserError(f"{where}: precision: bf16 is a runtime choice of the CPU, not an export precision; use "
                        f"fp32 (the bundle records what the CPU ran)")
    if not graph_checked and s["sampling"] == "grid_sample" and "GridSample" in r.unsupported_ops:
        raise UserError(f"{where}: sampling: {r.name} cannot run GridSample; use gather (the same numbers)")
    if not graph_checked and r.max_opset is not None and s["format"] == "onnx" and s["opset"] > r.max_opset:
        raise UserError(f"{where}: opset: {r.name} parses ONNX up to opset {r.max_opset}, not {s['opset']}")
    if s.get("dla") and d.dla_cores == 0:
        raise UserError(f"{where}: dla: {d.name} has no DLA cores")
    if s.get("dla") and s.get("batch") == "dynamic":
        raise UserError(f"{where}: dla: DLA builds static shapes only; give batch: 1 (or N)")
    if s.get("dla") and s["precision"] == "fp32":
        raise UserError(f"{where}: dla: DLA runs FP16 or INT8, not fp32")
    from .quant.calib import load_calib
    from .quant.policy import load_policy

    for key, load in (("policy", load_policy), ("calib", load_calib)):  # INT8 data the recipe names
        if s.get(key):
            try:
                load(s[key])
            except UserError as e:
                raise UserError(f"{where}: {key}: {e}") from None
    if s.get("tolerances"):
        from .compare import validate_tolerances

        validate_tolerances(s["tolerances"], source=f"{where}: tolerances")
    if s.get("imgsz") is not None:
        from .model.variants import parse_imgsz

        try:
            parse_imgsz(s["imgsz"])
        except UserError as e:
            raise UserError(f"{where}: imgsz: {e}") from None


def shipped_targets() -> list:
    """Every shipped recipe, resolved at its device's default runtime."""
    return [resolve(name) for name in _shipped("recipes")]


def validate_all() -> dict:
    """Parse every shipped runtime, device and recipe file, and resolve every recipe at every runtime key of
    its device: {file: 'ok'}; the first problem raises."""
    out = {}
    for folder, kind in (("devices/runtimes", "runtime"), ("devices", "device"), ("recipes", "recipe")):
        for path in _shipped(folder).values():
            parse(path, kind)
            out[str(path)] = "ok"
    for name in _shipped("recipes"):
        t = resolve(name)
        for key in t.device.runtimes:
            resolve(f"{name}@{key}")
    return out
