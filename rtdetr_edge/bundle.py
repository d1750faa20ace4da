"""Bundles, the device side: read a bundle's manifest, verify it, and load its golden data.

A bundle is a folder: the exported artifact(s), ``manifest.json`` and ``golden.npz``. The manifest lists
every artifact (``artifacts``: kind, file, format, precision, what produced it), the sha256 of every
file, and a digest of its own content, so a damaged or edited file -- the manifest included -- is
caught before anything runs. Needs numpy only (no PyTorch): this is what a device runs.
"""

import hashlib
import json
import platform
import re
from importlib import metadata
from pathlib import Path

import numpy as np

from .errors import UserError
from .fsutil import atomic_write_text
from .vocab import INPUT_IMAGES, INPUT_SIZES

PREPROCESSING = {"resize": "bilinear to the input size, no letterbox", "color": "RGB", "scale": "1/255",
                 "mean": None, "std": None, "layout": "NCHW", "dtype": "float32"}
MANIFEST = "manifest.json"
GOLDEN = "golden.npz"
_verified = {}  # (bundle, file) -> (size, mtime_ns, sha256): hash each file once per process


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions(*packages) -> dict:
    out = {"python": platform.python_version()}
    for name in ("rtdetr-edge", "torch", *packages):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _digest(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def write_manifest(folder, manifest: dict) -> dict:
    """Hash every file of `folder` into the manifest, seal the manifest with its own digest, write it."""
    import time

    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest["sha256"] = {p.relative_to(folder).as_posix(): sha256(p) for p in files}
    manifest.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    manifest["digest"] = _digest(manifest)
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2))
    return manifest


MAX_MANIFEST_BYTES = 4 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def read_manifest(bundle) -> dict:
    """The manifest, read as data from a stranger: every field the tools use is type-checked and bounded
    (check_manifest) before anything is opened or allocated from it."""
    path = Path(bundle) / MANIFEST
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise UserError(f"{path}: {path.stat().st_size} bytes; a manifest is at most {MAX_MANIFEST_BYTES}")
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{bundle}: not a bundle (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read it ({e})") from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise UserError(f"{path}: malformed JSON ({str(e)[:120]})") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{path}: not a manifest (expected a JSON object)")
    for key in ("format", "artifact", "input", "sha256"):
        if key not in manifest:
            raise UserError(f"{path}: no '{key}' field; not a manifest written by rtdetr-edge export")
    check_manifest(manifest, path)
    return manifest


def check_manifest(m: dict, where="manifest.json") -> None:
    """The fields a tool acts on, each of its type and within bounds; one line naming the field otherwise.
    Every file named must be a plain relative path inside the bundle."""
    from .model.variants import MAX_IMGSZ
    from .vocab import FORMATS, PRECISIONS

    def bad(field, why):
        raise UserError(f"{where}: {field}: {why}")

    if m["format"] not in FORMATS:
        bad("format", f"must be one of {', '.join(FORMATS)}")
    for key in ("precision", "artifact_precision", "runtime_precision"):
        if key in m and m[key] not in PRECISIONS:
            bad(key, f"must be one of {', '.join(PRECISIONS)}")
    inp = m["input"]
    if not isinstance(inp, dict):
        bad("input", "must be an object")
    size = inp.get("imgsz")
    if not (isinstance(size, list) and len(size) == 2 and all(type(s) is int and 32 <= s <= MAX_IMGSZ and s % 32 == 0
                                                               for s in size)):
        bad("input.imgsz", f"must be [height, width], multiples of 32 up to {MAX_IMGSZ}")
    batch = inp.get("batch", 1)
    if batch != "dynamic" and not (type(batch) is int and 1 <= batch <= 64):
        bad("input.batch", "must be 1..64 or \"dynamic\"")
    sha = m["sha256"]
    if not isinstance(sha, dict) or not all(isinstance(k, str) and isinstance(v, str) and _HEX64.match(v)
                                            for k, v in sha.items()):
        bad("sha256", "must map file names to 64 hex digits")
    for name in sha:
        safe_relative(name, f"{where}: sha256")
    if "digest" not in m:
        bad("digest", "missing: a bundle without its digest cannot be checked (export it again)")
    if not isinstance(m["digest"], str) or not _HEX64.match(m["digest"]):
        bad("digest", "must be 64 hex digits")
    safe_relative(m["artifact"], f"{where}: artifact")
    artifacts = m.get("artifacts")
    if not isinstance(artifacts, list) or not artifacts or not all(
            isinstance(a, dict) and isinstance(a.get("file"), str) for a in artifacts):
        bad("artifacts", "must be a list of objects with a file")
    for k, a in enumerate(artifacts):
        safe_relative(a["file"], f"{where}: artifacts.{k}.file")
        if a["file"] not in sha:
            bad(f"artifacts.{k}.file", f"{a['file']} has no sha256: every artifact is hashed")
    if m["artifact"] not in sha:
        bad("artifact", f"{m['artifact']} has no sha256")
    n = m.get("num_classes")
    if n is not None and not (type(n) is int and 1 <= n <= 100000):
        bad("num_classes", "must be an integer 1..100000")
    names = m.get("class_names")
    if names is not None:
        if not (isinstance(names, list) and all(isinstance(c, str) and len(c) <= 200 for c in names)):
            bad("class_names", "must be a list of names")
        if n is not None and len(names) != n:
            bad("class_names", f"{len(names)} names for {n} classes")


def safe_relative(name, where) -> str:
    """A file name from a manifest: relative, no '..', no drive or backslash tricks."""
    p = Path(str(name))
    if not isinstance(name, str) or not name or p.is_absolute() or ".." in p.parts or "\\" in name or \
            any(not c.isprintable() for c in name):
        raise UserError(f"{where}: {name!r} is not a plain relative path inside the bundle")
    return name


def bundle_file(bundle, name) -> Path:
    """The path of a file named in a manifest, which must stay inside the bundle (a symlink that leaves it
    is refused)."""
    bundle = Path(bundle)
    safe_relative(name, f"{bundle / MANIFEST}")
    path = bundle / name
    root = bundle.resolve()
    if path.exists() and not path.resolve().is_relative_to(root):
        raise UserError(f"{bundle / MANIFEST}: {name} leaves the bundle (a link to {path.resolve()})")
    return path


def planned(manifest, which="artifact") -> tuple:
    """(precision, tolerances) the export plan recorded: `which` = "artifact" (the file, run anywhere) or
    "runtime" (what the device runs: the engine built from the artifact). verify and parity read these and
    work nothing out again."""
    from .compare import validate_tolerances

    precision = manifest.get(f"{which}_precision")
    tol = (manifest.get("tolerances") or {}).get(which) if isinstance(manifest.get("tolerances"), dict) else None
    if not isinstance(precision, str) or not isinstance(tol, dict):
        raise UserError(f"{MANIFEST}: no {which}_precision/tolerances.{which}: written by an older rtdetr-edge; "
                        f"export the bundle again")
    return precision, validate_tolerances(tol, source=f"{MANIFEST}: tolerances.{which}")


def is_bundle(path) -> bool:
    """A folder that we wrote: it holds a manifest that reads as ours."""
    try:
        read_manifest(path)
    except UserError:
        return False
    return True


def problems(bundle, manifest) -> list:
    """What is wrong with the bundle's files: 'NAME (missing)', 'NAME (differs)', 'manifest.json (edited)'."""
    bundle = Path(bundle)
    bad = []
    if "digest" in manifest and manifest["digest"] != _digest(manifest):
        bad.append(f"{MANIFEST} (edited after export)")
    for name, digest in manifest.get("sha256", {}).items():
        p = bundle_file(bundle, name)
        if not p.is_file():
            bad.append(f"{name} (missing)")
            continue
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
        if _verified.get(key) != digest:
            if sha256(p) != digest:
                bad.append(f"{name} (differs from its sha256)")
                continue
            _verified[key] = digest
    return bad


def open_bundle(bundle) -> dict:
    """Read and verify a bundle; returns its manifest. A damaged bundle is a UserError naming the files."""
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise UserError(f"{bundle}: not a bundle folder (export one with `rtdetr-edge export`)")
    manifest = read_manifest(bundle)
    bad = problems(bundle, manifest)
    if bad:
        raise UserError(f"{bundle}: damaged bundle: {', '.join(bad)}")
    return manifest


def artifact(manifest, kind="model") -> dict:
    """The manifest entry of an artifact by kind ('model': the shipped graph; 'raw': its twin before top-k),
    or None."""
    return next((e for e in manifest["artifacts"] if e.get("kind") == kind), None)


def load_golden(bundle) -> dict:
    path = Path(bundle) / GOLDEN
    if not path.is_file():
        raise UserError(f"{bundle}: {GOLDEN} is missing from the bundle")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        why = "not an .npz of plain arrays; pickled objects are never loaded" if "pickle" in str(e) else e
        raise UserError(f"{path}: not readable golden data ({why})") from None


def golden_inputs(golden) -> tuple:
    """(images float32 [N,3,H,W] in [0,1], orig sizes [N,2]) from golden.npz contents."""
    return golden[INPUT_IMAGES].transpose(0, 3, 1, 2).astype(np.float32) / 255.0, golden[INPUT_SIZES]
