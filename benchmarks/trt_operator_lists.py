"""Print, per TensorRT version, the ONNX operators its parser does not take, read from onnx-tensorrt's own
docs/operators.md on that release branch (the source of the `unsupported_ops` lists in
devices/runtimes/tensorrt-*.yaml). Needs the repository on disk:

    python benchmarks/trt_operator_lists.py /path/to/onnx-tensorrt  (a clone or a bare git dir)

An operator marked N, or absent from a version's table, is unsupported there.
"""

import re
import subprocess
import sys

BRANCHES = {"8.2": "8.2-GA", "8.5": "8.5-GA", "8.6": "8.6-GA", "10.1": "10.1-GA"}


def table(repo, branch):
    text = subprocess.run(["git", "-C", repo, "show", f"{branch}:docs/operators.md"], capture_output=True,
                          text=True, check=True).stdout
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\|\s*([A-Z][A-Za-z0-9]+)\s*\|\s*([YN])\s*\|(.*)", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3).strip(" |"))
    return text.splitlines()[4], rows


def main(repo):
    tables = {v: table(repo, b) for v, b in BRANCHES.items()}
    every = sorted(set().union(*(rows for _, rows in tables.values())))
    for version, (head, rows) in tables.items():
        missing = [op for op in every if rows.get(op, ("N",))[0] == "N"]
        print(f"# TensorRT {version}: {head}")
        print("unsupported:", ", ".join(missing))
        restricted = {op: r for op, (ok, r) in rows.items() if ok == "Y" and r and op in
                      ("TopK", "GridSample", "Resize", "ReduceMax", "ReduceSum", "ReduceMean", "Einsum")}
        for op, r in restricted.items():
            print(f"  {op}: {r[:160]}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror/onnx+onnx-tensorrt/repo")
