"""INT8 fake-quant from nvidia-modelopt: quantizers on the policy's Conv/Linear layers and nowhere else.

- `quantize(model, policy, batches)`: the model (QAT form) gets modelopt's TensorQuantizers (int8,
  weights per output channel = axis 0, inputs per tensor, symmetric, zero point 0: the form TensorRT
  takes) on exactly the layers the policy names, ranges set by max calibration on `batches`.
- `attach(model, quant)`: the same quantizers without calibration, for loading a checkpoint: the ranges
  (`*_quantizer._amax` buffers) come from its state dict.
- The backbone's residual sums (`add_sum_quantizers`, where the policy quantizes the backbone's stages): an
  8-bit quantizer on each input of each block's sum (the branch's output, a shortcut convolution's output; an
  identity or pooled shortcut reads the block input through its first layer's quantizer), calibrated after
  the layers' quantizers. Without them OpenVINO wrote each such convolution's output in float and ran the sum,
  the ReLU and the next quantizer apart; with them it adds the shortcut inside the convolution and writes
  8-bit output (docs/int8.md). NVIDIA's Q/DQ placement guide asks the same of ResNet residuals for TensorRT.
- Ranges are static (not learned): QAT fine-tunes the weights under fixed ranges, so there are no scale
  parameters for the optimizer or weight decay, and EMA copies `_amax` buffers instead of averaging them.
- `weight_bits=7`: weights on a 7-bit grid (|q| <= 63) stored as int8: x86 CPUs without VNNI (AVX2, AVX-512
  without VNNI) multiply uint8 activations by int8 weights and add pairs of products in int16 with
  saturation (vpmaddubsw); 255 x 127 x 2 overflows it, 255 x 63 x 2 does not. Made by widening each weight
  quantizer's range by 127/63 after calibration: the int8 export path is unchanged (modelopt exports 8 bits
  only) and the file's weights are exactly the fake-quant model's. The OpenVINO and onnxruntime docs give
  the same workaround (7-bit weights; onnxruntime's `reduce_range`).
"""

import contextlib
import copy
import io
import logging
import os
import warnings

import torch

from .policy import Policy

LIBRARY = "nvidia-modelopt"
AMAX_SUFFIX = "_quantizer._amax"


def _mtq():
    """modelopt.torch.quantization, imported quietly: its import pulls torchao, which prints warnings about
    optional CUDA kernels on a CPU machine."""
    os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for name in ("torchao", "torch.utils._pytree", "modelopt"):
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            import modelopt.torch.quantization as mtq
        except ImportError:
            from ..errors import UserError

            raise UserError("INT8 needs nvidia-modelopt: pip install 'rtdetr-edge[quant]'") from None
    return mtq


def library_version() -> str:
    import importlib.metadata as md

    return f"{LIBRARY} {md.version('nvidia-modelopt')}"


def config(layers) -> dict:
    """modelopt's config: everything off, then int8 weight (axis 0) and input (per tensor) quantizers on
    exactly `layers` (module names)."""
    cfg = [{"quantizer_name": "*", "enable": False}]
    for name in layers:
        cfg.append({"quantizer_name": f"{name}.weight_quantizer", "cfg": {"num_bits": 8, "axis": 0}})
        cfg.append({"quantizer_name": f"{name}.input_quantizer", "cfg": {"num_bits": 8, "axis": None}})
    return {"quant_cfg": cfg, "algorithm": "max"}


def _quiet_quantize(model, cfg, loop):
    mtq = _mtq()
    with contextlib.redirect_stdout(io.StringIO()):  # "Inserted N quantizers"
        return mtq.quantize(model, copy.deepcopy(cfg), loop)


WEIGHT_BITS = (7, 8)
# the group whose quantization brings the residual sums' quantizers (add_sum_quantizers); False: none, as before
# 2026-12-03 (benchmarks/value_maps.py --change residual_sums)
SUM_QUANTIZERS = True
SUM_GROUP = "backbone.stages"


def _residual_blocks(model):
    from ..model.backbone import _Residual

    return [m for m in model.modules() if isinstance(m, _Residual)]


def add_sum_quantizers(model, loop=None) -> int:
    """Give each residual block of the backbone its sum quantizers (int8, per tensor; module doc) and, with
    `loop` (a function running the model on the calibration batches), calibrate them (max) with every other
    quantizer active; without it their ranges come from a checkpoint. Returns how many were added."""
    _mtq()
    from modelopt.torch.quantization.config import QuantizerAttributeConfig
    from modelopt.torch.quantization.nn import TensorQuantizer

    added = []
    device = next(model.parameters()).device
    for block in _residual_blocks(model):
        block.sum_quantizer = TensorQuantizer(QuantizerAttributeConfig(num_bits=8, axis=None)).to(device)
        added.append(block.sum_quantizer)
        if not block.shortcut:
            block.shortcut_quantizer = TensorQuantizer(QuantizerAttributeConfig(num_bits=8, axis=None)).to(device)
            added.append(block.shortcut_quantizer)
    if loop is not None and added:
        for q in added:
            q.disable_quant()
            q.enable_calib()
        loop(model)
        for q in added:
            q.load_calib_amax()
            q.disable_calib()
            q.enable_quant()
    return len(added)


def quantize(model, policy: Policy, batches, source="ptq", weight_bits=8) -> torch.nn.Module:
    """Insert the policy's quantizers into `model` (QAT form, eval mode) and calibrate their ranges (max) on
    `batches` (float32 [B,3,H,W] arrays or tensors); `weight_bits` 7 puts the weights on a 7-bit grid (module
    doc). Records `model.quant` (what a checkpoint stores)."""
    if weight_bits not in WEIGHT_BITS:
        raise ValueError(f"weight_bits must be 7 or 8, got {weight_bits!r}")
    if model.form != "qat":
        model.to_form("qat")
    layers = policy.layers(model)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()

    batches = list(batches)  # twice: the layers' quantizers, then the sums' (calibrated on the quantized layers)

    def loop(m):
        with torch.no_grad():
            for b in batches:
                m(torch.as_tensor(b, device=device))

    _quiet_quantize(model, config(layers), loop)
    if weight_bits == 7:
        for name, m in model.named_modules():
            if name.endswith(".weight_quantizer") and getattr(m, "is_enabled", False):
                m.amax = m.amax * (127 / 63)
    sums = SUM_QUANTIZERS and SUM_GROUP in policy.groups
    if sums:  # calibrated on the layers as they will run, weight grid included
        add_sum_quantizers(model, loop)
    model.train(was_training)
    model.quant = {"library": library_version(), "policy": policy.to_dict(), "layers": layers, "source": source,
                   "weights": "int8 symmetric per output channel (axis 0)" + (
                       ", 7-bit grid (|q| <= 63: no int16 saturation on x86 CPUs without VNNI)"
                       if weight_bits == 7 else ""),
                   "weight_bits": weight_bits, "residual_sums": bool(sums),
                   "activations": "int8 symmetric per tensor, zero point 0", "calibration": "max"}
    return model


def attach(model, quant: dict, state: dict) -> torch.nn.Module:
    """Quantizers as recorded in a checkpoint's `quant` metadata, with their ranges from `state` (the
    checkpoint's state dict). The model must be in the QAT form."""
    from ..errors import UserError

    layers = quant.get("layers")
    if not isinstance(layers, list) or not all(isinstance(n, str) for n in layers):
        raise UserError("metadata 'quant.layers' is not a list of layer names")
    known = {n for n, _ in model.named_modules()}
    unknown = [n for n in layers if n not in known]
    if unknown:
        raise UserError(f"metadata 'quant.layers' names {unknown[0]!r}, which the model does not have")
    _quiet_quantize(model, config(layers), None)
    if quant.get("residual_sums"):  # checkpoints made before 2026-12-03 have none
        add_sum_quantizers(model)
    modules = dict(model.named_modules())
    for key, value in state.items():
        if key.endswith(AMAX_SUFFIX):
            owner = modules.get(key[: -len("._amax")])
            if owner is None:
                raise UserError(f"quantizer range {key} belongs to no quantizer of the model")
            owner.amax = value.clone()
    model.quant = dict(quant)
    return model


def enabled_quantizers(model) -> list:
    """Names of the enabled quantizers (`layer.input_quantizer`, `layer.weight_quantizer`)."""
    return [n for n, m in model.named_modules()
            if n.endswith("_quantizer") and getattr(m, "is_enabled", False)]


def disable_quantizers(model) -> list:
    """Turn every enabled quantizer off (the model then runs in float with its weights); returns them."""
    mods = [m for n, m in model.named_modules() if n.endswith("_quantizer") and getattr(m, "is_enabled", False)]
    for m in mods:
        m.disable()
    return mods


@contextlib.contextmanager
def quantizers_off(model):
    """Within the block the model runs in float with its (QAT-trained) weights."""
    mods = disable_quantizers(model)
    try:
        yield model
    finally:
        for m in mods:
            m.enable()
