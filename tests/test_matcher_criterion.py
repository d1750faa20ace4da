"""Matcher against brute force; losses and box ops against hand-computed values."""

import itertools
import math

import pytest
import torch

from rtdetr_edge.model.box_ops import box_cxcywh_to_xyxy, box_iou, generalized_box_iou
from rtdetr_edge.train.criterion import RTDETRCriterion
from rtdetr_edge.train.matcher import HungarianMatcher


def _cost_matrix(m, logits, boxes, labels, tboxes):
    p = logits.sigmoid()[:, labels]
    neg = (1 - m.alpha) * p ** m.gamma * -(1 - p + 1e-8).log()
    pos = m.alpha * (1 - p) ** m.gamma * -(p + 1e-8).log()
    giou = generalized_box_iou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(tboxes))
    return 5 * torch.cdist(boxes, tboxes, p=1) + 2 * (pos - neg) - 2 * giou


@pytest.mark.parametrize("seed", range(6))
def test_matcher_is_optimal_like_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    nq, nt, nc = 5, int(torch.randint(1, 5, (1,), generator=g)), 3
    logits = torch.randn(1, nq, nc, generator=g)
    boxes = torch.rand(1, nq, 4, generator=g) * 0.5 + 0.2
    labels = torch.randint(0, nc, (nt,), generator=g)
    tboxes = torch.rand(nt, 4, generator=g) * 0.5 + 0.2
    m = HungarianMatcher()
    (rows, cols), = m({"pred_logits": logits, "pred_boxes": boxes}, [{"labels": labels, "boxes": tboxes}])
    cost = _cost_matrix(m, logits[0], boxes[0], labels, tboxes)
    got = cost[rows, cols].sum().item()
    best = min(sum(cost[q, t].item() for t, q in enumerate(perm)) for perm in itertools.permutations(range(nq), nt))
    assert len(rows) == nt and sorted(cols.tolist()) == list(range(nt))
    assert got == pytest.approx(best, abs=1e-5)


def test_matcher_handles_images_without_targets():
    m = HungarianMatcher()
    out = {"pred_logits": torch.randn(2, 4, 3), "pred_boxes": torch.rand(2, 4, 4)}
    empty = {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}
    one = {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])}
    idx = m(out, [empty, one])
    assert len(idx[0][0]) == 0 and len(idx[1][0]) == 1
    assert all(len(i[0]) == 0 for i in m(out, [empty, empty]))


def test_box_ops_hand_values():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [4.0, 0.0, 5.0, 1.0]])
    iou, union = box_iou(a, b)
    assert iou[0, 0].item() == pytest.approx(1 / 7)
    assert iou[0, 1].item() == 0.0
    giou = generalized_box_iou(a, b)
    assert giou[0, 0].item() == pytest.approx(1 / 7 - (9 - 7) / 9)
    assert giou[0, 1].item() == pytest.approx(0 - (10 - 5) / 10)
    assert torch.allclose(box_cxcywh_to_xyxy(torch.tensor([[0.5, 0.5, 0.2, 0.4]])),
                          torch.tensor([[0.4, 0.3, 0.6, 0.7]]))


def test_losses_hand_computed():
    # one image, two queries, two classes, one target matched to query 0
    logits = torch.tensor([[[1.0, -1.0], [0.5, 0.0]]])
    pred = torch.tensor([[[0.5, 0.5, 0.4, 0.4], [0.2, 0.2, 0.1, 0.1]]])
    tgt = {"labels": torch.tensor([0]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.4]])}
    crit = RTDETRCriterion(num_classes=2)
    indices = [(torch.tensor([0]), torch.tensor([0]))]
    out = {"pred_logits": logits, "pred_boxes": pred}
    boxes = crit.loss_boxes(out, [tgt], indices, num_boxes=1)
    assert boxes["loss_bbox"].item() == pytest.approx(0.2)  # |0.4 - 0.2|
    # pred xyxy [.3,.3,.7,.7], target [.4,.3,.6,.7]: iou = .08/.16 = .5, enclosing = union -> giou .5
    assert boxes["loss_giou"].item() == pytest.approx(0.5)
    vfl = crit.loss_vfl(out, [tgt], indices, num_boxes=1)["loss_vfl"].item()
    # by hand: target score q = IoU (0.5) for (query 0, class 0), 0 elsewhere;
    # weight = q for the positive, alpha * p^gamma for negatives; BCE mean over queries, summed, * Q / num_boxes
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731

    def bce(x, t):
        return -(t * math.log(sig(x)) + (1 - t) * math.log(1 - sig(x)))

    terms = [[0.5 * bce(1.0, 0.5), 0.75 * sig(-1.0) ** 2 * bce(-1.0, 0)],
             [0.75 * sig(0.5) ** 2 * bce(0.5, 0), 0.75 * sig(0.0) ** 2 * bce(0.0, 0)]]
    expect = (sum(terms[0]) + sum(terms[1])) / 2 * 2 / 1  # mean over queries (dim 1), sum, * Q / num_boxes
    assert vfl == pytest.approx(expect, rel=1e-5)


def test_criterion_covers_aux_encoder_and_denoising_terms():
    from rtdetr_edge import build_model

    torch.manual_seed(0)
    model = build_model("rtdetrv2_r18vd", num_classes=3, imgsz=64).train()
    targets = [{"labels": torch.tensor([0, 2]), "boxes": torch.tensor([[0.5, 0.5, 0.3, 0.3], [0.2, 0.7, 0.1, 0.2]])},
               {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}]
    out = model(torch.rand(2, 3, 64, 64), targets)
    losses = RTDETRCriterion(3)(out, targets)
    for suffix in ("", "_aux_0", "_aux_1", "_enc_0", "_dn_0", "_dn_2"):
        for k in ("loss_vfl", "loss_bbox", "loss_giou"):
            assert torch.isfinite(losses[k + suffix])
    sum(losses.values()).backward()
