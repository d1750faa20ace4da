"""The detections type every model and runtime backend ends in."""

from dataclasses import dataclass

import numpy as np


@dataclass
class Detections:
    """Detections of one image: labels [K] int, boxes [K,4] xyxy in original pixels, scores [K], best first."""

    labels: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self):
        return len(self.scores)

    def filter(self, conf: float) -> "Detections":
        keep = self.scores >= conf
        return Detections(self.labels[keep], self.boxes[keep], self.scores[keep])

    @staticmethod
    def from_batch(labels, boxes, scores) -> list:
        """Split batched post-processed outputs ([N,K], [N,K,4], [N,K]) into one Detections per image."""
        labels, boxes, scores = (np.asarray(a) for a in (labels, boxes, scores))
        return [Detections(labels[i].astype(np.int64), boxes[i].astype(np.float32), scores[i].astype(np.float32))
                for i in range(len(scores))]
