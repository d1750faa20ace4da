"""RT-DETRv2 training augmentations on numpy/OpenCV, with the authors' "stop epoch" policy.

Each transform maps (RGB uint8 image [H,W,3], target with `boxes` xyxy pixels and `labels`) to the
same, keeping boxes consistent with the image. `ToTensor` ends the chain: float image [3,H,W] in
[0,1] and boxes as normalised cxcywh (what the criterion expects).
The released pipeline: PhotometricDistort(0.5) -> ZoomOut -> IoUCrop(0.8) -> Sanitize -> HFlip ->
Resize -> Sanitize -> ToTensor; the first three are switched off from `stop_epoch` on.
"""

import numpy as np
import torch

STRONG = ("PhotometricDistort", "ZoomOut", "IoUCrop")


def _rng(rng):
    return rng if rng is not None else np.random.default_rng()


class PhotometricDistort:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, image, target, rng=None):
        import cv2

        rng = _rng(rng)
        img = image.astype(np.float32)
        if rng.random() < self.p:  # brightness
            img += rng.uniform(-32, 32)
        if rng.random() < self.p:  # contrast
            img *= rng.uniform(0.5, 1.5)
        img = np.clip(img, 0, 255).astype(np.uint8)
        if rng.random() < self.p or rng.random() < self.p:
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
            if rng.random() < self.p:  # saturation
                hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.5, 1.5), 0, 255)
            if rng.random() < self.p:  # hue (OpenCV hue is 0..180)
                hsv[..., 0] = (hsv[..., 0] + rng.uniform(-9, 9)) % 180
            img = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
        return img, target


class ZoomOut:
    """Place the image on a larger canvas (side ratio 1..4) filled with `fill`."""

    def __init__(self, fill=0, side_range=(1.0, 4.0), p=0.5):
        self.fill, self.side_range, self.p = fill, side_range, p

    def __call__(self, image, target, rng=None):
        rng = _rng(rng)
        if rng.random() >= self.p:
            return image, target
        h, w = image.shape[:2]
        r = rng.uniform(*self.side_range)
        ch, cw = int(h * r), int(w * r)
        top, left = int(rng.integers(0, ch - h + 1)), int(rng.integers(0, cw - w + 1))
        canvas = np.full((ch, cw, 3), self.fill, np.uint8)
        canvas[top:top + h, left:left + w] = image
        target = dict(target, boxes=target["boxes"] + np.array([left, top, left, top], np.float32))
        return canvas, target


class IoUCrop:
    """SSD's random crop: a crop whose IoU with the boxes reaches a random minimum; keeps boxes whose
    centre lies in the crop (as torchvision's RandomIoUCrop)."""

    def __init__(self, p=0.8, min_scale=0.3, max_scale=1.0, min_aspect=0.5, max_aspect=2.0,
                 options=(0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0), trials=40):
        self.p, self.min_scale, self.max_scale = p, min_scale, max_scale
        self.min_aspect, self.max_aspect, self.options, self.trials = min_aspect, max_aspect, options, trials

    def __call__(self, image, target, rng=None):
        from ..model.box_ops import box_iou

        rng = _rng(rng)
        boxes = target["boxes"]
        if rng.random() >= self.p or len(boxes) == 0:
            return image, target
        h, w = image.shape[:2]
        for _ in range(10):
            min_iou = self.options[int(rng.integers(0, len(self.options)))]
            if min_iou >= 1.0:  # "no crop"
                return image, target
            for _ in range(self.trials):
                sw, sh = rng.uniform(self.min_scale, self.max_scale, 2)
                cw, ch = int(w * sw), int(h * sh)
                if ch == 0 or cw == 0 or not (self.min_aspect <= cw / ch <= self.max_aspect):
                    continue
                left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
                cx = (boxes[:, 0] + boxes[:, 2]) / 2
                cy = (boxes[:, 1] + boxes[:, 3]) / 2
                inside = (cx > left) & (cx < left + cw) & (cy > top) & (cy < top + ch)
                if not inside.any():
                    continue
                crop = torch.tensor([[left, top, left + cw, top + ch]], dtype=torch.float32)
                iou, _ = box_iou(torch.from_numpy(boxes[inside]), crop)
                if iou.max() < min_iou:
                    continue
                new = boxes[inside] - np.array([left, top, left, top], np.float32)
                new = np.clip(new, 0, [cw, ch, cw, ch]).astype(np.float32)
                target = dict(target, boxes=new, labels=target["labels"][inside])
                return image[top:top + ch, left:left + cw].copy(), target
        return image, target


class HFlip:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, image, target, rng=None):
        if _rng(rng).random() >= self.p:
            return image, target
        w = image.shape[1]
        b = target["boxes"]
        flipped = np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1).astype(np.float32)
        return image[:, ::-1].copy(), dict(target, boxes=flipped)


class Resize:
    def __init__(self, size):
        self.size = size  # (h, w)

    def __call__(self, image, target, rng=None):
        from ..preprocess import resize_to

        h, w = image.shape[:2]
        th, tw = self.size
        out = resize_to(image, self.size)
        scale = np.array([tw / w, th / h, tw / w, th / h], np.float32)
        return out, dict(target, boxes=target["boxes"] * scale)


class Sanitize:
    """Clip boxes to the image and drop those narrower or lower than `min_size` pixels."""

    def __init__(self, min_size=1.0):
        self.min_size = min_size

    def __call__(self, image, target, rng=None):
        h, w = image.shape[:2]
        b = np.clip(target["boxes"], 0, [w, h, w, h]).astype(np.float32)
        keep = ((b[:, 2] - b[:, 0]) >= self.min_size) & ((b[:, 3] - b[:, 1]) >= self.min_size)
        return image, dict(target, boxes=b[keep], labels=target["labels"][keep])


class ToTensor:
    def __call__(self, image, target, rng=None):
        h, w = image.shape[:2]
        b = target["boxes"]
        cxcywh = np.stack([(b[:, 0] + b[:, 2]) / 2 / w, (b[:, 1] + b[:, 3]) / 2 / h,
                           (b[:, 2] - b[:, 0]) / w, (b[:, 3] - b[:, 1]) / h], 1).astype(np.float32)
        img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255.0
        out = dict(target, boxes=torch.from_numpy(cxcywh.reshape(-1, 4)),
                   labels=torch.from_numpy(np.asarray(target["labels"], np.int64)))
        return img, out


class Compose:
    """Applies the chain; transforms named in `policy_ops` are skipped once `epoch >= stop_epoch`."""

    def __init__(self, transforms, stop_epoch=None, policy_ops=STRONG, seed=None):
        self.transforms = transforms
        self.stop_epoch = stop_epoch
        self.policy_ops = policy_ops
        self.epoch = 0
        self.seed = seed

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __call__(self, image, target, rng=None):
        rng = _rng(rng)
        for t in self.transforms:
            if self.stop_epoch is not None and self.epoch >= self.stop_epoch and type(t).__name__ in self.policy_ops:
                continue
            image, target = t(image, target, rng)
        return image, target


def train_transforms(imgsz, stop_epoch=None, strong=True):
    ops = [PhotometricDistort(0.5), ZoomOut(fill=0), IoUCrop(0.8), Sanitize(1)] if strong else []
    ops += [HFlip(0.5), Resize(imgsz), Sanitize(1), ToTensor()]
    return Compose(ops, stop_epoch=stop_epoch)


def eval_transforms(imgsz):
    return Compose([Resize(imgsz), ToTensor()])
