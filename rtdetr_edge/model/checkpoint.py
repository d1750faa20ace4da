"""Checkpoints: ours (with metadata) and the authors' published RT-DETRv2 files.

- Read with ``torch.load(..., weights_only=True)``: a checkpoint can never run code.
- Authors' layouts: ``{'ema': {'module': state_dict}}`` or ``{'model': state_dict}`` with their key names
  (our module names are theirs, so no mapping is needed).
- Ours: ``{'model': state_dict, 'rtdetr_edge': {variant, num_classes, class_names, imgsz, sampling}}``
  (training adds ``ema``, optimizer state etc. beside it).
- Loading is strict; the only tolerated differences are the size-dependent buffers
  (``decoder.anchors``/``decoder.valid_mask``, recomputed for the size asked for) and, when a
  different ``num_classes`` is asked for, the class-dependent tensors (re-initialised, and said so).
"""

import logging
import re

import torch

from ..errors import UserError
from .backbone import RESNET_DEPTHS
from .rtdetr import FORMS, RTDETR, build_model
from .variants import VARIANTS, parse_imgsz

log = logging.getLogger("rtdetr_edge")

SIZE_DEPENDENT_KEYS = ("decoder.anchors", "decoder.valid_mask")
CLASS_KEY = re.compile(r"^decoder\.(enc_score_head\.|dec_score_head\.\d+\.|denoising_class_embed\.)")
META_KEY = "rtdetr_edge"


def read_checkpoint(path) -> tuple:
    """Return (state_dict, meta or None, raw checkpoint dict). Errors name the file. A shipped model's name
    (`rtdetr-edge models`) stands for its file."""
    from ..zoo import resolve_weights

    path = resolve_weights(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated, not a torch file, or a pickle that wants to run code
        text = str(e)
        if "GLOBAL" in text or "Unsupported global" in text:
            reason = "refused: it contains Python objects that could run code (only tensors are allowed)"
        else:  # whatever the unpickler tripped over (EOF, a bad key, an index, a zip error): not a file we read
            detail = text.split("WeightsUnpickler error:")[-1].strip().splitlines()[0] if "WeightsUnpickler" in text \
                else (text.strip().splitlines()[0] if text.strip() else type(e).__name__)
            reason = f"not a PyTorch file, or truncated/corrupt: {detail[:120]}"
        raise UserError(f"{path}: not a readable checkpoint ({reason[:200]})") from None
    if not isinstance(ckpt, dict):
        raise UserError(f"{path}: not a checkpoint (expected a dict, got {type(ckpt).__name__})")
    if isinstance(ckpt.get("ema"), dict) and isinstance(ckpt["ema"].get("module"), dict):
        state = ckpt["ema"]["module"]
    elif isinstance(ckpt.get("model"), dict):
        state = ckpt["model"]
    elif ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state = ckpt  # a bare state_dict
    else:
        raise UserError(f"{path}: no model weights found (expected 'ema.module', 'model' or a state_dict)")
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: the state_dict holds non-tensor values")
    state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
    meta = ckpt.get(META_KEY) if isinstance(ckpt.get(META_KEY), dict) else None
    return state, meta, ckpt


def _signature_of_state(state: dict) -> dict:
    def count(prefix):
        pat = re.compile(re.escape(prefix) + r"(\d+)\.")
        return len({m.group(1) for k in state for m in [pat.match(k)] if m})

    try:
        bottleneck = any(k.startswith("backbone.res_layers.0.blocks.0.branch2c.") for k in state)
        blocks = [count(f"backbone.res_layers.{i}.blocks.") for i in range(4)]
        hidden = state["encoder.input_proj.0.conv.weight"].shape[0]
        csp_hidden = state["encoder.fpn_blocks.0.conv1.conv.weight"].shape[0]
        in_channels = tuple(state[f"encoder.input_proj.{i}.conv.weight"].shape[1] for i in range(3))
        # sampling points over the levels (the authors' sp1/sp2/sp3 checkpoints: 3, 6, 9; else 12): 8 heads, x and y
        points = state["decoder.decoder.layers.0.cross_attn.sampling_offsets.bias"].shape[0] // 16
    except KeyError as e:
        raise UserError(f"not an RT-DETRv2 checkpoint: missing {e.args[0]}") from None
    return {"bottleneck": bottleneck, "blocks": blocks, "enc_hidden": hidden,
            "expansion": round(csp_hidden / hidden, 3), "in_channels": in_channels,
            "dec_layers": count("decoder.decoder.layers."), "points": points}


def _signature_of_variant(v) -> dict:
    return {"bottleneck": v.depth >= 50, "blocks": RESNET_DEPTHS[v.depth], "enc_hidden": v.enc_hidden_dim,
            "expansion": round(v.expansion, 3), "in_channels": tuple(v.enc_in_channels),
            "dec_layers": v.dec_layers, "points": sum(v.num_points)}


def infer_variant(state: dict) -> str:
    """The variant whose architecture the state_dict's tensors describe.

    rtdetrv2_r50vd_m and rtdetrv2_r50vd differ in CSP width (expansion 0.5 vs 1.0), so every released
    variant is told apart by its tensors alone.
    """
    sig = _signature_of_state(state)
    for name, v in VARIANTS.items():
        if _signature_of_variant(v) == sig:
            return name
    raise UserError(f"cannot infer the variant from the checkpoint (backbone blocks {sig['blocks']}, "
                    f"encoder width {sig['enc_hidden']}, {sig['dec_layers']} decoder layers, {sig['points']} "
                    "sampling points over the levels); pass --variant")


def _short(keys, n=5):
    keys = sorted(keys)
    more = f" ... (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def drop_size_dependent(state: dict, source="checkpoint") -> dict:
    """The state without the size-dependent buffers (``decoder.anchors``, ``decoder.valid_mask``). They are
    recomputed for the size asked for, so their values are never used; the authors' code writes +inf into the
    anchors outside the valid border, which must not count as a broken weight."""
    dropped = [k for k in SIZE_DEPENDENT_KEYS if k in state]
    if dropped:
        log.debug("%s: ignored %s: size-dependent buffers, recomputed for the input size (the authors' anchors "
                  "hold +inf outside the valid border)", source, ", ".join(dropped))
    return {k: v for k, v in state.items() if k not in SIZE_DEPENDENT_KEYS}


def load_state_into(model: RTDETR, state: dict, source: str = "checkpoint") -> list:
    """Strictly load `state` into `model`; class-dependent tensors of another class count are left as
    initialised. Returns the keys re-initialised. Raises UserError naming missing/unexpected keys."""
    state = drop_size_dependent(state, source)
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise UserError(f"{source}: non-finite weights (NaN or inf) in {len(bad)} tensors, e.g. {_short(bad, 2)}; "
                        "the checkpoint is broken")
    own = model.state_dict()
    reinit = []
    ckpt_classes = state.get("decoder.enc_score_head.weight")
    if ckpt_classes is not None and ckpt_classes.shape[0] != model.num_classes:
        reinit = sorted(k for k in state if CLASS_KEY.match(k))
        state = {k: v for k, v in state.items() if k not in reinit}
    missing = [k for k in own if k not in state and k not in reinit and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own and not _is_frozen_bn_counter(k, own)]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_short(unexpected)}")
        raise UserError(f"{source}: does not match {model.variant} ({'; '.join(parts)})")
    for k, v in state.items():
        if k in own and own[k].shape != v.shape:
            raise UserError(f"{source}: tensor {k} has shape {tuple(v.shape)}, {model.variant} expects "
                            f"{tuple(own[k].shape)}")
    model.load_state_dict(state, strict=False)
    return reinit


def _is_frozen_bn_counter(key, own):
    return key.endswith(".num_batches_tracked") and key.rsplit(".", 1)[0] + ".running_mean" in own


def load_model(weights, variant=None, num_classes=None, imgsz=None, sampling="grid_sample") -> RTDETR:
    """Load our or the authors' checkpoint into a model in eval mode.

    variant / num_classes default to the checkpoint's metadata, else are inferred from its tensors;
    imgsz defaults to the checkpoint's (ours) or 640. Size-dependent buffers are recomputed for imgsz.
    """
    state, meta, _ = read_checkpoint(weights)
    meta = meta or {}
    try:
        return _load_model(weights, state, meta, variant, num_classes, imgsz, sampling)
    except UserError as e:
        text = str(e)
        raise UserError(text if str(weights) in text else f"{weights}: {text}") from None


def _load_model(weights, state, meta, variant, num_classes, imgsz, sampling):
    if imgsz is None and "imgsz" in meta:
        try:
            meta_size = parse_imgsz(tuple(meta["imgsz"]))
        except (UserError, TypeError, ValueError):
            raise UserError(f"metadata 'imgsz' is {meta['imgsz']!r}, not a size (pass --imgsz)") from None
        imgsz = meta_size
    if meta.get("class_names") is not None and not (isinstance(meta["class_names"], (list, tuple))
                                                     and all(isinstance(n, str) for n in meta["class_names"])):
        raise UserError("metadata 'class_names' is not a list of names")
    variant = variant or meta.get("variant") or infer_variant(state)
    ckpt_classes = int(state["decoder.enc_score_head.weight"].shape[0]) \
        if "decoder.enc_score_head.weight" in state else meta.get("num_classes")
    if ckpt_classes is None:
        raise UserError(f"{weights}: missing decoder.enc_score_head.weight; is this an RT-DETRv2 checkpoint?")
    num_classes = num_classes or ckpt_classes
    class_names = meta.get("class_names") if num_classes == ckpt_classes else None
    size = parse_imgsz(imgsz if imgsz is not None else (640, 640))
    model = build_model(variant, num_classes=num_classes, imgsz=size, sampling=sampling, class_names=class_names)
    prepare_form(model, meta, state)
    reinit = load_state_into(model, state, source=str(weights))
    if reinit:
        log.warning("%s: %d classes in the checkpoint, %d asked for: re-initialised %d class-dependent tensors "
                    "(%s)", weights, ckpt_classes, num_classes, len(reinit), _short(reinit, 3))
    return model.eval()


def prepare_form(model: RTDETR, meta: dict, state: dict) -> RTDETR:
    """Bring a freshly built model to the checkpoint's recorded layout before its weights are loaded: its
    form (train / deploy / qat: RTDETR.to_form) and, for a quantized checkpoint, its INT8 quantizers (with
    their ranges from `state`)."""
    form = meta.get("form", "train")
    if form not in FORMS:
        raise UserError(f"metadata 'form' is {form!r}, not one of {', '.join(FORMS)}")
    model.to_form(form)
    if meta.get("quant") is not None:
        if not isinstance(meta["quant"], dict) or form != "qat":
            raise UserError("metadata 'quant' needs the qat form and a mapping")
        from ..quant.fakequant import attach

        attach(model, meta["quant"], state)
    return model


def atomic_save(obj, path) -> None:
    """torch.save to a temp file in the same folder, then rename: never a half-written file."""
    from ..fsutil import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_checkpoint(model: RTDETR, path, **extra) -> None:
    """Our checkpoint: weights (no size-dependent buffers) + metadata; `extra` entries are stored beside."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_save({"model": state, META_KEY: model.meta(), **extra}, path)


def to_authors_layout(model: RTDETR) -> dict:
    """The layout the authors publish: {'ema': {'module': state_dict}} with their buffers, for a given size."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    state["decoder.anchors"] = model.decoder.anchors.detach().cpu()
    state["decoder.valid_mask"] = model.decoder.valid_mask.detach().cpu()
    return {"ema": {"module": state, "updates": 0}}


def write_untrained(out, variant, num_classes, imgsz, seed=0):
    """`rtdetr-edge init`: a randomly initialised checkpoint, marked untrained (for pipeline and export checks)."""
    torch.manual_seed(seed)
    save_checkpoint(build_model(variant, num_classes=num_classes, imgsz=imgsz), out, untrained=True)
