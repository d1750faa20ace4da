"""Independent reference: HuggingFace transformers' RTDetrV2ForObjectDetection, with our own key mapping.

Builds the HF model with the hyper-parameters of one of our variants and copies our weights into it,
so both can run the same images. Nothing is downloaded: the HF model is built from a config.
"""

import re

import torch

from rtdetr_edge.model.backbone import RESNET_DEPTHS
from rtdetr_edge.model.variants import get_variant


def hf_model_for(model, **config):
    """config: RTDetrV2Config overrides (e.g. freeze_backbone_batch_norms=False for training)."""
    from transformers import RTDetrResNetConfig, RTDetrV2Config, RTDetrV2ForObjectDetection

    v = get_variant(model.variant)
    bottleneck = v.depth >= 50
    backbone = RTDetrResNetConfig(
        layer_type="bottleneck" if bottleneck else "basic", depths=RESNET_DEPTHS[v.depth],
        hidden_sizes=[256, 512, 1024, 2048] if bottleneck else [64, 128, 256, 512], embedding_size=64,
        out_indices=[2, 3, 4])
    cfg = RTDetrV2Config(
        backbone_config=backbone, encoder_in_channels=list(v.enc_in_channels), encoder_hidden_dim=v.enc_hidden_dim,
        encoder_ffn_dim=v.enc_dim_feedforward, hidden_expansion=v.expansion, decoder_layers=v.dec_layers,
        decoder_in_channels=[v.enc_hidden_dim] * 3, num_labels=model.num_classes, d_model=v.hidden_dim,
        decoder_method="default", anchor_image_size=None, eval_size=None, **config)
    hf = RTDetrV2ForObjectDetection(cfg).eval()
    hf.load_state_dict(to_hf_state_dict(model.state_dict(), hf.state_dict()), strict=True)
    return hf


def _map_key(k):
    """Our (the authors') key -> list of HF keys (a list, since HF keeps heads twice)."""
    rules = [
        (r"^backbone\.conv1\.conv1_(\d)\.conv\.", lambda m: f"model.backbone.model.embedder.embedder.{int(m[1]) - 1}.convolution."),
        (r"^backbone\.conv1\.conv1_(\d)\.norm\.", lambda m: f"model.backbone.model.embedder.embedder.{int(m[1]) - 1}.normalization."),
        (r"^backbone\.res_layers\.(\d+)\.blocks\.(\d+)\.branch2([abc])\.conv\.",
         lambda m: f"model.backbone.model.encoder.stages.{m[1]}.layers.{m[2]}.layer.{'abc'.index(m[3])}.convolution."),
        (r"^backbone\.res_layers\.(\d+)\.blocks\.(\d+)\.branch2([abc])\.norm\.",
         lambda m: f"model.backbone.model.encoder.stages.{m[1]}.layers.{m[2]}.layer.{'abc'.index(m[3])}.normalization."),
        (r"^backbone\.res_layers\.(\d+)\.blocks\.(\d+)\.short\.conv\.conv\.",
         lambda m: f"model.backbone.model.encoder.stages.{m[1]}.layers.{m[2]}.shortcut.1.convolution."),
        (r"^backbone\.res_layers\.(\d+)\.blocks\.(\d+)\.short\.conv\.norm\.",
         lambda m: f"model.backbone.model.encoder.stages.{m[1]}.layers.{m[2]}.shortcut.1.normalization."),
        (r"^backbone\.res_layers\.(\d+)\.blocks\.(\d+)\.short\.conv\.",
         lambda m: f"model.backbone.model.encoder.stages.{m[1]}.layers.{m[2]}.shortcut.convolution."),
        (r"^backbone\.res_layers\.(\d+)\.blocks\.(\d+)\.short\.norm\.",
         lambda m: f"model.backbone.model.encoder.stages.{m[1]}.layers.{m[2]}.shortcut.normalization."),
        (r"^encoder\.input_proj\.(\d)\.conv\.", lambda m: f"model.encoder_input_proj.{m[1]}.0."),
        (r"^encoder\.input_proj\.(\d)\.norm\.", lambda m: f"model.encoder_input_proj.{m[1]}.1."),
        (r"^encoder\.encoder\.(\d)\.layers\.(\d)\.self_attn\.out_proj\.", lambda m: f"model.encoder.aifi.{m[1]}.layers.{m[2]}.self_attn.o_proj."),
        (r"^encoder\.encoder\.(\d)\.layers\.(\d)\.linear1\.", lambda m: f"model.encoder.aifi.{m[1]}.layers.{m[2]}.mlp.fc1."),
        (r"^encoder\.encoder\.(\d)\.layers\.(\d)\.linear2\.", lambda m: f"model.encoder.aifi.{m[1]}.layers.{m[2]}.mlp.fc2."),
        (r"^encoder\.encoder\.(\d)\.layers\.(\d)\.norm1\.", lambda m: f"model.encoder.aifi.{m[1]}.layers.{m[2]}.self_attn_layer_norm."),
        (r"^encoder\.encoder\.(\d)\.layers\.(\d)\.norm2\.", lambda m: f"model.encoder.aifi.{m[1]}.layers.{m[2]}.final_layer_norm."),
        (r"^encoder\.", lambda m: "model.encoder."),
        (r"^decoder\.input_proj\.(\d)\.conv\.", lambda m: f"model.decoder_input_proj.{m[1]}.0."),
        (r"^decoder\.input_proj\.(\d)\.norm\.", lambda m: f"model.decoder_input_proj.{m[1]}.1."),
        (r"^decoder\.decoder\.layers\.(\d+)\.self_attn\.out_proj\.", lambda m: f"model.decoder.layers.{m[1]}.self_attn.o_proj."),
        (r"^decoder\.decoder\.layers\.(\d+)\.norm1\.", lambda m: f"model.decoder.layers.{m[1]}.self_attn_layer_norm."),
        (r"^decoder\.decoder\.layers\.(\d+)\.cross_attn\.num_points_scale", lambda m: f"model.decoder.layers.{m[1]}.encoder_attn.n_points_scale"),
        (r"^decoder\.decoder\.layers\.(\d+)\.cross_attn\.", lambda m: f"model.decoder.layers.{m[1]}.encoder_attn."),
        (r"^decoder\.decoder\.layers\.(\d+)\.norm2\.", lambda m: f"model.decoder.layers.{m[1]}.encoder_attn_layer_norm."),
        (r"^decoder\.decoder\.layers\.(\d+)\.linear1\.", lambda m: f"model.decoder.layers.{m[1]}.mlp.fc1."),
        (r"^decoder\.decoder\.layers\.(\d+)\.linear2\.", lambda m: f"model.decoder.layers.{m[1]}.mlp.fc2."),
        (r"^decoder\.decoder\.layers\.(\d+)\.norm3\.", lambda m: f"model.decoder.layers.{m[1]}.final_layer_norm."),
        (r"^decoder\.query_pos_head\.", lambda m: "model.decoder.query_pos_head."),
        (r"^decoder\.enc_output\.proj\.", lambda m: "model.enc_output.0."),
        (r"^decoder\.enc_output\.norm\.", lambda m: "model.enc_output.1."),
        (r"^decoder\.(enc_score_head|enc_bbox_head|denoising_class_embed)\.", lambda m: f"model.{m[1]}."),
    ]
    head = re.match(r"^decoder\.dec_(score|bbox)_head\.(\d+)\.(.*)$", k)
    if head:
        name = "class_embed" if head[1] == "score" else "bbox_embed"
        return [f"model.decoder.{name}.{head[2]}.{head[3]}", f"{name}.{head[2]}.{head[3]}"]
    for pattern, repl in rules:
        m = re.match(pattern, k)
        if m:
            return [repl(m) + k[m.end():]]
    raise KeyError(k)


def to_hf_state_dict(ours: dict, hf_template: dict) -> dict:
    out = {}
    for k, v in ours.items():
        attn = re.match(r"^(encoder\.encoder|decoder\.decoder)\.(.*)self_attn\.in_proj_(weight|bias)$", k)
        if attn:
            base = _map_key(k.replace("in_proj_" + attn[3], "out_proj." + attn[3]))[0]
            base = base[: -len("o_proj." + attn[3])]
            for name, part in zip(("q_proj", "k_proj", "v_proj"), v.chunk(3, dim=0)):
                out[f"{base}{name}.{attn[3]}"] = part.clone()
            continue
        for hk in _map_key(k):
            if hk in hf_template:
                out[hk] = v.clone()
            elif not hk.endswith("num_batches_tracked"):
                raise KeyError(f"{k} -> {hk} not in the HF model")
    for hk, hv in hf_template.items():  # HF-only bookkeeping buffers
        out.setdefault(hk, hv.clone()) if hk.endswith("num_batches_tracked") else None
    return out


@torch.no_grad()
def randomize_(model, seed=0, scale=0.02):
    """Perturb every parameter and BatchNorm statistic so that no zero-initialised head hides a bug."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        p.add_(torch.randn(p.shape, generator=g) * scale)
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b.copy_(torch.randn(b.shape, generator=g) * 0.1)
        elif name.endswith("running_var"):
            b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
    return model
