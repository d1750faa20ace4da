"""One export plan for the CLI and the library: the same refusals through both doors, which layer set each
setting, and the two precisions (the artifact's, the device's) with their tolerances."""

import pytest

from cli_runner import run_cli
from rtdetr_edge import UserError
from rtdetr_edge.export.plan import plan_export
from rtdetr_edge.targets import _shipped

TARGETS = sorted(_shipped("recipes"))
PRECISIONS = [None, "fp32", "fp16", "int8"]


def _api(target, precision, weights):
    try:
        plan_export(target, layer="cli", weights=str(weights), precision=precision)
    except UserError as e:
        return str(e)
    return None


@pytest.mark.parametrize("target", TARGETS)
def test_the_api_and_the_cli_refuse_the_same_things(target, tmp_path):
    """Every shipped target with every precision: the CLI refuses exactly what the API refuses, with the same
    line; what the API accepts the CLI takes too (it then stops at the missing checkpoint, before any work)."""
    weights = tmp_path / "absent.pt"
    for precision in PRECISIONS:
        expect = _api(target, precision, weights)
        args = ["export", "--weights", weights, "--target", target, "--out", tmp_path / "o"]
        r = run_cli(*args, *(["--precision", precision] if precision else []))
        assert r.returncode == 2 and "Traceback" not in r.stderr, (target, precision, r.stderr)
        if expect is None:
            assert "checkpoint not found" in r.stderr, (target, precision, r.stderr)
        else:
            assert " ".join(expect.split()) in " ".join(r.stderr.split()), (target, precision, expect, r.stderr)
        assert not (tmp_path / "o").exists()


def test_jetson_nano_int8_is_refused_by_the_library(tmp_path):
    from rtdetr_edge.export import export

    with pytest.raises(UserError, match="precision: int8 is not available on jetson-nano"):
        export(tmp_path / "w.pt", target="jetson-nano", precision="int8")
    with pytest.raises(UserError, match="a TensorRT target exports an FP32 ONNX"):
        export(tmp_path / "w.pt", target="jetson-orin-nano", precision="fp16")


def test_the_plan_says_which_layer_set_each_field_and_both_precisions():
    plan = plan_export("jetson-orin-nano", layer="call", weights="w.pt", opset=16)
    assert plan.origin["opset"] == "call" and plan.origin["format"] == "recipe" and plan.origin["force"] == "default"
    assert plan.messages == (f"--opset 16 overrides the recipe's 17 ({plan.target.recipe_file})",)
    # TensorRT builds FP16 from an FP32 ONNX: the file is fp32 with fp32 tolerances, the engine fp16 with the
    # recipe's
    assert plan.artifact_precision == "fp32" and plan.runtime_precision == "fp16"
    assert plan.tolerances["artifact"]["raw_score_max"] == 1e-4
    assert plan.tolerances["runtime"] == plan.target.tolerances()
    with pytest.raises(Exception):  # frozen: nothing downstream can change the plan
        plan.artifact_precision = "int8"
    int8 = plan_export("jetson-orin-nano", layer="call", weights="w.pt", precision="int8")
    assert int8.artifact_precision == int8.runtime_precision == "int8" and int8.config.int8_form == "s8s8"
    assert plan.target.precision == "fp16"  # the caller's precision made a new target; the recipe's is untouched


def test_tolerances_come_from_the_runtime_without_a_target():
    """TFLite's static INT8 gets its runtime's wider accuracy budget; the others the INT8 default."""
    tflite = plan_export(None, layer="call", weights="w.pt", format="tflite", precision="int8")
    onnx = plan_export(None, layer="call", weights="w.pt", format="onnx", precision="int8")
    assert tflite.tolerances["artifact"]["ap_drop_max"] > onnx.tolerances["artifact"]["ap_drop_max"]
    assert onnx.tolerances["artifact"]["ap_drop_max"] == 0.003
