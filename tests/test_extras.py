"""What we import is what pyproject declares, and a missing extra is named literally."""

import ast
import sys
import tomllib
from pathlib import Path

import numpy as np

from cli_runner import run_cli
from rtdetr_edge.extras import CORE, EXTERNAL, OPTIONAL, missing_message

ROOT = Path(__file__).parent.parent


def _requirement_names(reqs) -> set:
    import re

    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].strip().lower() for r in reqs}


def test_every_module_we_import_is_declared_where_the_table_says():
    imported = set()
    for path in (ROOT / "rtdetr_edge").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "rtdetr_edge"}
    assert third_party - set(CORE) - set(OPTIONAL) - set(EXTERNAL) == set()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {d.lower() for d in CORE.values()} <= _requirement_names(project["dependencies"])
    extras = project["optional-dependencies"]
    for module, (_, extra, dist) in OPTIONAL.items():
        assert dist.lower() in _requirement_names(extras[extra]), (module, extra, dist)
    # `all` brings every extra a full install needs
    assert _requirement_names(extras["all"]) == {"rtdetr-edge"}
    constraints = _requirement_names(l for l in (ROOT / "constraints.txt").read_text().splitlines()
                                     if l.strip() and not l.startswith("#"))
    for module, (_, extra, dist) in OPTIONAL.items():
        if extra in ("train", "export", "coco", "quant"):  # what `all` installs is pinned in constraints.txt
            assert dist.lower() in constraints, dist


def test_a_missing_extra_is_named_literally(tmp_path, monkeypatch):
    import cv2

    assert missing_message("onnxruntime") == ("onnxruntime is not installed here; this needs "
                                              "pip install 'rtdetr-edge[onnx]'")
    assert missing_message("torch.nn").endswith("pip install 'rtdetr-edge[train]' (a bundle runs without it)")
    assert missing_message("somethingelse") is None
    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "m.onnx").write_bytes(b"not read: the runtime is missing first")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as on a device without the extra
    r = run_cli("predict", "--model", tmp_path / "m.onnx", "--source", image)
    assert r.returncode == 2
    assert r.stderr.strip() == ("error: onnxruntime is not installed here; this needs pip install "
                                "'rtdetr-edge[onnx]'"), r.stderr


def test_the_project_files_point_nowhere_outside_the_repository():
    for path in [ROOT / "pyproject.toml", ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        text = path.read_text()
        assert "shared/notes" not in text and "../shared" not in text, path
