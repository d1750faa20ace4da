"""Our RT-DETRv2 against an independent implementation (HuggingFace transformers), and the samplers."""

import pytest
import torch

from hf_reference import hf_model_for
from rtdetr_edge.model.attention import self_attention
from rtdetr_edge.model.deformable import MSDeformableAttention, deformable_attention_core


def run_with_refs(model, x):
    refs, handle = _capture_init_refs(model)
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        handle.remove()
    return out, refs[0]


def assert_close_aligned(out_a, refs_a, out_b, refs_b, tol):
    perm = _align(refs_a, refs_b)
    for key in ("pred_logits", "pred_boxes"):
        a = torch.stack([o[p] for o, p in zip(out_a[key], perm)])
        assert (a - out_b[key]).abs().max() <= tol, key


def _capture_init_refs(model):
    refs = []
    handle = model.decoder.decoder.register_forward_hook(lambda m, args, out: refs.append(args[1].detach()))
    return refs, handle


def _align(ours_refs, hf_refs):
    """Permutation p with ours[p[j]] == hf[j]: top-k may order near-tied queries differently (1e-7 noise)."""
    perms = []
    for a, b in zip(ours_refs, hf_refs):
        d = (b[:, None, :] - a[None, :, :]).abs().amax(-1)  # exact (cdist uses a lossy matmul form)
        p = d.argmin(1)
        assert d.min(1).values.max() < 1e-4, "query selection differs, not just its order"
        assert len(set(p.tolist())) == len(p)
        perms.append(p)
    return torch.stack(perms)


@pytest.mark.parametrize("size", [(128, 128), (96, 160)], ids=["square", "non-square"])
@pytest.mark.parametrize("sampling", ["grid_sample", "gather"])
def test_matches_huggingface(r18_small, size, sampling):
    model = r18_small
    hf = hf_model_for(model)
    model.set_imgsz(size).set_sampling(sampling)
    torch.manual_seed(1)
    x = torch.rand(2, 3, *size)
    refs, handle = _capture_init_refs(model)
    try:
        with torch.no_grad():
            ours = model(x)
            ref = hf(pixel_values=x)
    finally:
        handle.remove()
        model.set_imgsz(128).set_sampling("grid_sample")
    perm = _align(refs[0], ref.init_reference_points)
    logits = torch.stack([o[p] for o, p in zip(ours["pred_logits"], perm)])
    boxes = torch.stack([o[p] for o, p in zip(ours["pred_boxes"], perm)])
    assert ours["pred_logits"].shape == ref.logits.shape == (2, 300, 7)
    assert (logits - ref.logits).abs().max() <= 1e-4
    assert (boxes - ref.pred_boxes).abs().max() <= 1e-4


def _random_attention_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(12, 20), (6, 10), (3, 5)]
    n = sum(h * w for h, w in shapes)
    value = torch.randn(2, n, 4, 8, generator=g)
    # locations beyond [0, 1] too: zero padding must be the same
    loc = torch.rand(2, 11, 4, 9, 2, generator=g) * 1.4 - 0.2
    weights = torch.rand(2, 11, 4, 9, generator=g).softmax(-1)
    return value, shapes, loc, weights, [2, 3, 4]


def test_self_attention_matches_nn_multihead_attention():
    """Our packed-q/k path on the module's own parameters, with and without the denoising mask."""
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True)
    qk, value = torch.randn(2, 10, 32), torch.randn(2, 10, 32)
    mask = torch.rand(10, 10) < 0.4
    mask.fill_diagonal_(False)
    for m in (None, mask):
        ref, _ = mha(qk, qk, value, attn_mask=m, need_weights=False)
        torch.testing.assert_close(self_attention(mha, qk, value, m), ref, atol=1e-6, rtol=0)
    ref, _ = mha(qk, qk, value, attn_mask=mask, need_weights=False)
    assert not torch.allclose(self_attention(mha, qk, value, None), ref, atol=1e-3)  # the mask matters


@pytest.mark.parametrize("points", [4, [3, 6, 2]])
def test_sampling_locations_are_the_broadcast_formula(points):
    """The flat form of the locations (one row of factors, the boxes broadcast along it) gives the authors'
    broadcast over [bs, Lq, heads, points, 2] bit for bit: each point's x from the box's x and width, y from y and
    height."""
    torch.manual_seed(0)
    attn = MSDeformableAttention(64, 4, 3, points)
    n = sum(attn.num_points_list)
    offsets = torch.randn(2, 7, 4 * n * 2) * 3
    ref = torch.rand(2, 7, 1, 4)
    want = (ref[:, :, None, :, :2] + offsets.reshape(2, 7, 4, n, 2) * attn.num_points_scale.unsqueeze(-1)
            * ref[:, :, None, :, 2:] * attn.offset_scale)
    assert torch.equal(attn.sampling_locations(offsets, ref), want)


def test_gather_equals_grid_sample():
    args = _random_attention_inputs()
    a = deformable_attention_core(*args, method="grid_sample")
    b = deformable_attention_core(*args, method="gather")
    assert (a - b).abs().max() <= 1e-5


def _assert_same_outputs(model, x, setting, a, b, default):
    """The model's outputs on x at x's size with `setting(model, a)` and with `setting(model, b)` agree to 1e-5;
    the model is left at 128 px with `setting(model, default)`."""
    model.set_imgsz(tuple(x.shape[2:]))
    try:
        with torch.no_grad():
            out_a = setting(model, a)(x)
            out_b = setting(model, b)(x)
    finally:
        setting(model.set_imgsz(128), default)
    assert (out_a["pred_logits"] - out_b["pred_logits"]).abs().max() <= 1e-5
    assert (out_a["pred_boxes"] - out_b["pred_boxes"]).abs().max() <= 1e-5


def test_gather_equals_grid_sample_on_whole_model(r18_small):
    _assert_same_outputs(r18_small, torch.rand(1, 3, 96, 160), lambda m, s: m.set_sampling(s), "grid_sample", "gather",
                         "grid_sample")


def test_the_value_projection_as_a_matrix_product_equals_the_convolution(r18_small):
    """OpenVINO's form of grid_sample's value projection (W @ X on the flattened maps) gives the 1x1
    convolution's outputs up to float rounding, non-square maps and a batch of 2 included; an unknown form is
    refused."""
    _assert_same_outputs(r18_small, torch.rand(2, 3, 96, 160), lambda m, f: m.set_value_projection(f), "conv",
                         "matmul", "conv")
    assert r18_small.value_projection == "conv"
    with pytest.raises(ValueError, match="value projection"):
        r18_small.set_value_projection("transpose")


def test_discrete_is_nearest_with_per_axis_clamp():
    value, shapes, loc, weights, npts = _random_attention_inputs(3)
    out = deformable_attention_core(value, shapes, loc, weights, npts, method="discrete")
    # brute force: per level, per point, the authors' rounding, x clamped to width and y to height
    bs, n, heads, c = value.shape
    expect = torch.zeros(bs, loc.shape[1], heads, c)
    start, p0 = 0, 0
    for (h, w), k in zip(shapes, npts):
        v = value[:, start:start + h * w].reshape(bs, h, w, heads, c)
        for p in range(p0, p0 + k):
            ix = (loc[..., p, 0] * w + 0.5).clamp(0, w - 1).long()
            iy = (loc[..., p, 1] * h + 0.5).clamp(0, h - 1).long()
            for b in range(bs):
                for q in range(loc.shape[1]):
                    for hd in range(heads):
                        expect[b, q, hd] += weights[b, q, hd, p] * v[b, iy[b, q, hd], ix[b, q, hd], hd]
        start += h * w
        p0 += k
    assert (out - expect.reshape(bs, loc.shape[1], heads * c)).abs().max() <= 1e-5


def test_deploy_fuses_repvgg_without_changing_outputs(r18_small):
    import copy

    model = copy.deepcopy(r18_small)
    x = torch.rand(1, 3, 128, 128)
    before, refs_before = run_with_refs(model, x)
    model.deploy()
    after, refs_after = run_with_refs(model, x)
    assert not any(hasattr(m, "conv1") for m in model.modules() if type(m).__name__ == "RepVggBlock")
    assert_close_aligned(after, refs_after, before, refs_before, 1e-4)


def test_training_forward_has_aux_and_denoising_outputs():
    from rtdetr_edge import build_model

    model = build_model("rtdetrv2_r18vd", num_classes=5, imgsz=64).train()
    targets = [{"labels": torch.tensor([1, 4]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.3], [0.3, 0.6, 0.1, 0.1]])},
               {"labels": torch.tensor([2]), "boxes": torch.tensor([[0.4, 0.4, 0.5, 0.5]])}]
    out = model(torch.rand(2, 3, 64, 64), targets)
    assert out["pred_logits"].shape == (2, 84, 5)  # 64 px has only 64+16+4 encoder tokens for 300 queries
    assert len(out["aux_outputs"]) == 2 and len(out["enc_aux_outputs"]) == 1
    assert out["dn_meta"]["dn_num_group"] == 50 and len(out["dn_aux_outputs"]) == 3
    assert out["dn_aux_outputs"][0]["pred_logits"].shape == (2, 200, 5)
    loss = sum(o["pred_boxes"].sum() + o["pred_logits"].sum() for o in out["aux_outputs"]) + out["pred_logits"].sum()
    loss.backward()
    assert model.backbone.conv1.conv1_1.conv.weight.grad is not None
