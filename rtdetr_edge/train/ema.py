"""Exponential moving average of the weights, with the authors' warm-up of the decay."""

import copy
import math

import torch


class ModelEMA:
    def __init__(self, model, decay=0.9999, warmups=2000):
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.warmups, self.updates = decay, warmups, 0

    def current_decay(self):
        return self.decay * (1 - math.exp(-self.updates / self.warmups))

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = self.current_decay()
        state = model.state_dict()
        for k, v in self.module.state_dict().items():
            # INT8 ranges (`*_quantizer._amax`) are copied, never averaged: an averaged range is no range
            # the model trained under
            if v.dtype.is_floating_point and "_quantizer." not in k:
                v.mul_(d).add_(state[k].detach(), alpha=1 - d)
            else:
                v.copy_(state[k])

    def state_dict(self):
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state):
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
