"""COCO evaluation (faster-coco-eval) of a PyTorch model on a COCO-format validation set."""

import torch

from ..cocoeval import METRICS, coco_eval, to_coco_results
from ..errors import UserError

__all__ = ["METRICS", "coco_eval", "collate", "evaluate", "predict_dataset"]


def collate(batch):
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)


def predict_dataset(model, dataset, batch_size=8, progress=None, num_workers=0) -> list:
    """Run the model over a CocoDetection (eval transforms) and return COCO-format detections (the best 100
    per image, as COCO evaluates)."""
    from ..runtime.pytorch import torch_outputs

    was_training = model.training
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate,
                                         num_workers=num_workers)
    results = []
    for images, targets in loader:
        sizes = [t["orig_size"] for t in targets]
        for t, lab, box, sc in zip(targets, *torch_outputs(model, images.numpy(), sizes)):
            results += to_coco_results(t["image_id"], lab, box, sc, dataset.category_ids)
        if progress:
            progress(len(targets))
    model.train(was_training)
    return results


def evaluate(model, dataset, batch_size=8, progress=None) -> dict:
    if model.num_classes != dataset.num_classes:
        raise UserError(f"the model has {model.num_classes} classes, {dataset.ann_file} has {dataset.num_classes}")
    dets = predict_dataset(model, dataset, batch_size, progress)
    return coco_eval(dataset.ann_file, dets, dataset.category_ids, dataset.class_names,
                     image_ids=[im["id"] for im in dataset.images])


def evaluate_checkpoint(weights, data=None, val_json=None, images=None, imgsz=None, sampling="grid_sample",
                        batch_size=8, skip_bad=False, progress=None, on_total=None, say=None) -> dict:
    """`rtdetr-edge eval`: a checkpoint on a COCO validation set (a folder's val split, or an annotation file
    and its image folder). Returns {"metrics", "annotations", "imgsz"}; `say` gets the dataset's report line,
    `on_total` the number of images, `progress(n)` each batch."""
    from ..data.coco import CocoDetection, resolve_coco_dir
    from ..data.transforms import eval_transforms
    from ..model.checkpoint import load_model

    if val_json:
        if not images:
            raise UserError("--val-json needs --images")
        ann, img_dir = val_json, images
    elif data:
        ann, img_dir = resolve_coco_dir(data, "val")
    else:
        raise UserError("give --data DIR or --val-json FILE --images DIR")
    model = load_model(weights, imgsz=imgsz, sampling=sampling)
    dataset = CocoDetection(ann, img_dir, transforms=eval_transforms(model.imgsz), skip_bad=skip_bad)
    if say:
        say(dataset.report())
    if on_total:
        on_total(len(dataset))
    return {"metrics": evaluate(model, dataset, batch_size=batch_size, progress=progress), "annotations": str(ann),
            "imgsz": list(model.imgsz)}
