"""Placement policy: which Conv/Linear layers get INT8 fake-quant (weights per output channel, the layer's
input per tensor, symmetric, zero point 0) and which stay float.

The model's layers are named groups (GROUPS below: the structure is the code's); a policy (YAML, data) says
which groups are quantized and which are kept float. Selectors are group names or their dotted prefixes:
`decoder` selects every decoder group, `decoder.heads` both heads. Operations with no weights (softmax,
LayerNorm, the deformable sampling itself, box arithmetic) are never quantized: module quantizers only sit
on Conv/Linear inputs and weights, and, where `backbone.stages` is quantized, on the inputs of the backbone's
residual sums (quant/fakequant.py add_sum_quantizers).
"""

import re
from pathlib import Path

from ..errors import UserError

# group -> module-name pattern (names of the QAT form: BatchNorm folded, attention projections split)
GROUPS = {
    "backbone.stem": r"backbone\.conv1\.",
    "backbone.stages": r"backbone\.res_layers\.",
    "encoder.input_proj": r"encoder\.input_proj\.",
    "encoder.aifi.attention": r"encoder\.encoder\.\d+\.layers\.\d+\.self_attn\.",
    "encoder.aifi.ffn": r"encoder\.encoder\.\d+\.layers\.\d+\.linear\d$",
    "encoder.ccfm": r"encoder\.(lateral_convs|fpn_blocks|downsample_convs|pan_blocks)\.",
    "decoder.input_proj": r"decoder\.input_proj\.",
    "decoder.enc_output": r"decoder\.enc_output\.",
    "decoder.query_pos_head": r"decoder\.query_pos_head\.",
    "decoder.self_attention": r"decoder\.decoder\.layers\.\d+\.self_attn\.",
    "decoder.value_proj": r"decoder\.decoder\.layers\.\d+\.cross_attn\.value_proj$",
    "decoder.output_proj": r"decoder\.decoder\.layers\.\d+\.cross_attn\.output_proj$",
    "decoder.sampling_offsets": r"decoder\.decoder\.layers\.\d+\.cross_attn\.sampling_offsets$",
    "decoder.attention_weights": r"decoder\.decoder\.layers\.\d+\.cross_attn\.attention_weights$",
    "decoder.ffn": r"decoder\.decoder\.layers\.\d+\.linear\d$",
    "decoder.heads.score": r"decoder\.(enc_score_head|dec_score_head\.\d+)$",
    "decoder.heads.box": r"decoder\.(enc_bbox_head|dec_bbox_head\.\d+)\.",
}
_COMPILED = {g: re.compile(p) for g, p in GROUPS.items()}
POLICY_KEYS = ("name", "description", "quantize", "keep_float")


def group_of(name: str):
    """The group a module name belongs to, or None when it is in none; a name in two groups is a bug of the
    GROUPS table (RuntimeError)."""
    hits = [g for g, p in _COMPILED.items() if p.search(name)]
    if len(hits) > 1:
        raise RuntimeError(f"layer {name} is in more than one quantization group {hits} "
                           "(rtdetr_edge/quant/policy.py GROUPS)")
    return hits[0] if hits else None


def quantizable_layers(model) -> dict:
    """name -> group for every Conv2d/Linear of a QAT-form model that runs at inference (the denoising
    embedding is training-only and an Embedding). A layer in no group is an error: the table must cover
    the model."""
    import torch.nn as nn

    out = {}
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            group = group_of(name)
            if group is None:
                raise RuntimeError(f"layer {name} is in no quantization group (rtdetr_edge/quant/policy.py GROUPS)")
            out[name] = group
    return out


def select(selectors, where) -> list:
    """Group names matched by selectors (a group or a dotted prefix of groups). Unknown -> UserError."""
    chosen = []
    for s in selectors:
        if not isinstance(s, str):
            raise UserError(f"{where}: {s!r} is not a group name")
        hits = [g for g in GROUPS if g == s or g.startswith(s + ".")]
        if not hits:
            raise UserError(f"{where}: unknown group {s!r} (groups: {', '.join(GROUPS)}; a prefix such as "
                            "'decoder' selects all of its groups)")
        chosen += [g for g in hits if g not in chosen]
    return chosen


class Policy:
    """The groups quantized (`quantize` minus `keep_float`), from a policy file or dict."""

    def __init__(self, data: dict, source: str = "policy"):
        if not isinstance(data, dict):
            raise UserError(f"{source}: a policy is a mapping with keys {', '.join(POLICY_KEYS)}")
        unknown = [k for k in data if k not in POLICY_KEYS]
        if unknown:
            raise UserError(f"{source}: unknown key {unknown[0]!r} (known: {', '.join(POLICY_KEYS)})")
        for key in ("quantize", "keep_float"):
            if key in data and not isinstance(data[key], list):
                raise UserError(f"{source}: {key} must be a list of groups, got {type(data[key]).__name__}")
        if not data.get("quantize"):
            raise UserError(f"{source}: quantize: give at least one group (e.g. [backbone, encoder, decoder])")
        self.name = str(data.get("name") or Path(source).stem)
        self.description = str(data.get("description", ""))
        self.source = source
        quantized = select(data["quantize"], f"{source}: quantize")
        floats = select(data.get("keep_float") or [], f"{source}: keep_float")
        self.groups = [g for g in quantized if g not in floats]
        self.keep_float = [g for g in GROUPS if g not in self.groups]
        if not self.groups:
            raise UserError(f"{source}: keep_float removes every group that quantize selects")

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "quantize": list(self.groups),
                "keep_float": list(self.keep_float)}

    def layers(self, model) -> list:
        """Names of the Conv/Linear layers this policy quantizes in `model` (QAT form)."""
        return [n for n, g in quantizable_layers(model).items() if g in self.groups]


def policies_dir() -> Path:
    from ..paths import data_dir

    return data_dir("recipes") / "policies"


def load_policy(spec) -> Policy:
    """A policy: a shipped name (recipes/policies/NAME.yaml), a YAML file, or a dict."""
    if isinstance(spec, Policy):
        return spec
    if isinstance(spec, dict):
        return Policy(spec, "policy")
    path = Path(str(spec))
    if not path.suffix and not path.exists():
        path = policies_dir() / f"{spec}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in policies_dir().glob("*.yaml"))
            raise UserError(f"unknown quantization policy {spec!r} (shipped: {', '.join(known)}; or give a YAML file)")
    if not path.is_file():
        raise UserError(f"{path}: policy file not found")
    from .. import yamlfile

    return Policy(yamlfile.load(path), str(path))
