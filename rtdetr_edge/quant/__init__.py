"""Quantization: where INT8 goes (policy.py, data in recipes/policies/), what calibrates it (calib.py, lists
in calib/), the fake-quant model from nvidia-modelopt (fakequant.py), quantization-aware fine-tuning
(qat.py) and the per-group sensitivity scan (sensitivity.py). Exporting INT8 artifacts is export/int8.py."""
