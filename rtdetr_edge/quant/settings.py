"""What a QAT run quantizes with: the placement policy and calibration list from the options, the recipe, or
the defaults; checked before any work (and, for --resume, against what the run was started with)."""

from ..errors import UserError

DEFAULT_POLICY, DEFAULT_CALIB = "default", "shapes-64"


def quantization_inputs(recipe, policy, calib, resume, out) -> tuple:
    """(policy name, calibration list name, loaded list): the options, else the recipe's, else the defaults.
    A bad policy or list is one line before any work."""
    from pathlib import Path

    from .calib import load_calib
    from .policy import load_policy

    settings = recipe_quant_settings(recipe)
    if resume and (policy or calib or recipe):
        same_quantization_as_last(Path(out) / "last.pt", policy or settings.get("policy"),
                                  calib or settings.get("calib"))
    policy = policy or settings.get("policy") or DEFAULT_POLICY
    calib = calib or settings.get("calib") or DEFAULT_CALIB
    load_policy(policy)
    return policy, calib, load_calib(calib)


def same_quantization_as_last(last, policy, calib):
    """--resume continues the quantizers last.pt holds: a different --policy or --calib is refused (not
    silently ignored), naming what the run was started with."""
    from ..model.checkpoint import read_checkpoint
    from .calib import load_calib
    from .policy import load_policy

    if not last.is_file():
        return  # the trainer says there is nothing to resume
    _, meta, _ = read_checkpoint(last)
    quant = (meta or {}).get("quant") or {}
    recorded = quant.get("policy") or {}
    if policy and load_policy(policy).groups != recorded.get("quantize"):
        raise UserError(f"--resume: {last} was trained with the policy {recorded.get('name')!r}; --policy {policy} "
                        f"differs (resuming keeps the run's quantizers): drop --policy, or start a new --out")
    if calib and str(load_calib(calib).describe().get("list")) != str((quant.get("calib") or {}).get("list")):
        raise UserError(f"--resume: {last} was calibrated on {(quant.get('calib') or {}).get('list')}; --calib "
                        f"{calib} differs (the ranges were learned from it): drop --calib, or start a new --out")


def recipe_quant_settings(recipe) -> dict:
    """The quantization settings (policy, calib, int8_form) of a target or recipe file, or {}."""
    if not recipe:
        return {}
    from ..targets import resolve

    t = resolve(recipe)
    return {k: t.settings.get(k) for k in ("policy", "calib", "int8_form")}


def checkpoint_imgsz(weights):
    from ..model.checkpoint import read_checkpoint

    if not weights:
        return (640, 640)
    _, meta, _ = read_checkpoint(weights)
    return tuple((meta or {}).get("imgsz") or (640, 640))
