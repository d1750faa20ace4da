import torch

from rtdetr_edge.model.postprocess import PostProcessor


def test_boxes_in_each_images_pixels_and_topk_over_queries_and_classes():
    logits = torch.full((2, 3, 4), -10.0)
    logits[0, 1, 2] = 5.0  # image 0: query 1, class 2 is best
    logits[1, 2, 0] = 4.0  # image 1: query 2, class 0
    logits[1, 0, 3] = 3.0  # then query 0, class 3
    logits[0, 2, 1] = 2.0  # image 0's second: query 2, class 1 (no ties among the top two)
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.2], [0.25, 0.5, 0.5, 1.0], [0.5, 0.5, 1.0, 1.0]],
                          [[0.1, 0.1, 0.2, 0.2], [0.5, 0.5, 0.1, 0.1], [0.75, 0.25, 0.5, 0.5]]])
    sizes = torch.tensor([[640, 480], [100, 200]])  # (w, h)
    labels, xyxy, scores = PostProcessor(num_classes=4, num_top_queries=2)({"pred_logits": logits, "pred_boxes": boxes},
                                                                            sizes)
    assert labels.tolist() == [[2, 1], [0, 3]]
    assert torch.allclose(xyxy[0, 0], torch.tensor([0.0, 0.0, 320.0, 480.0]))
    assert torch.allclose(xyxy[1, 0], torch.tensor([50.0, 0.0, 100.0, 100.0]))
    assert torch.allclose(xyxy[1, 1], torch.tensor([0.0, 0.0, 20.0, 40.0]))
    assert torch.allclose(xyxy[0, 1], torch.tensor([0.0, 0.0, 640.0, 480.0]))
    assert torch.allclose(scores, torch.sigmoid(torch.tensor([[5.0, 2.0], [4.0, 3.0]])))
