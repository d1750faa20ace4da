"""Runtime backends behind one interface: `load_runtime(bundle_or_file, backend=None)`.

Every backend takes preprocessed images ([N,3,H,W] float32 in [0,1]) and original sizes ([N,2] (w, h))
and returns labels, boxes (xyxy pixels), scores as numpy arrays; `detect` goes from RGB images to
`Detections` through the one shared `preprocess`.
"""

from .base import Detections, Runtime, load_runtime

__all__ = ["Detections", "Runtime", "load_runtime"]
