"""Writing files and folders so that a failure (or SIGKILL) never leaves a half-written result.

Everything we write goes to a temporary name beside its target -- recognisable as ours: a leading dot,
the target's name, and ``.rtdetr-tmp`` -- and is renamed into place only when complete. Leftovers of a
killed run carry that mark and are removed by the next run that writes the same target.
"""

import errno
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

TMP_MARK = ".rtdetr-tmp"


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def clean_stale(path) -> list:
    """Remove our own temporaries left beside `path` by a run that was killed (not those of live ones)."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    prefix = _tmp_prefix(path)
    for p in path.parent.glob(prefix + "*" + TMP_MARK + "*"):
        pid = p.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue  # another run is writing it right now
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_output(option: str, path, kind: str = "file"):
    """An output option checked before any work starts (not after a ten-minute evaluation): a file name that
    is not a folder, a folder that is not a file, and somewhere we can write (a read-only disk or a folder of
    someone else's is one line now). `kind` is "file", "folder" or "any" (what exists there is the writer's
    to judge, e.g. a bundle --force may replace); None passes."""
    if path is None:
        return
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise UserError(f"{option} {path}: is a folder; give a file name")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise UserError(f"{option} {path}: exists and is not a folder")
    where = path if kind == "folder" and path.is_dir() else path.parent
    while not where.exists() and where != where.parent:
        where = where.parent
    if not where.is_dir():
        raise UserError(f"{option} {path}: {where} is not a folder")
    if not os.access(where, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: cannot write there ({where} is read-only or not writable by this user)")


def _tmp_name(path: Path, suffix="") -> Path:
    return path.with_name(f"{_tmp_prefix(path)}{os.getpid()}-{secrets.token_hex(4)}{TMP_MARK}{suffix}")


@contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary file path beside `path`; when the block ends without error it replaces `path`.
    `suffix` keeps a file extension a writer needs (e.g. '.png' for matplotlib/OpenCV)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{path.parent}: cannot create the folder ({e.strerror})") from None
    if not os.access(path.parent, os.W_OK):
        raise UserError(f"{path}: cannot write (the folder {path.parent} is read-only)")
    clean_stale(path)
    tmp = _tmp_name(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        _discard(tmp)
        if isinstance(e, OSError) and (isinstance(e, PermissionError) or e.errno in (errno.EROFS, errno.ENOSPC,
                                                                                   errno.EACCES, errno.EDQUOT)):
            raise UserError(f"{path}: cannot write ({e.strerror})") from None
        if isinstance(e, Exception) and not isinstance(e, UserError) and not os.access(path.parent, os.W_OK):
            # a writer that reports the failure its own way (torch.save, OpenCV, matplotlib)
            raise UserError(f"{path}: cannot write (the folder {path.parent} is read-only)") from None
        raise


def _discard(tmp: Path):
    """Remove a temporary, whatever is left of it; never raise while another error is on its way."""
    try:
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    except OSError:
        pass


def atomic_write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


@contextmanager
def scratch(beside):
    """A scratch folder for a converter's intermediate files, made beside `beside` (inside the bundle's own
    temporary folder while exporting), never in $TMPDIR: a killed export leaves it inside a temporary the
    next run removes, and a finished one removes it at once."""
    import tempfile

    with tempfile.TemporaryDirectory(dir=Path(beside).parent, prefix=".scratch-") as tmp:
        yield Path(tmp)


@contextmanager
def folder_lock(folder):
    """Hold an exclusive lock on an output folder for as long as we write into it: a second rtdetr-edge process
    writing the same folder is refused with the holder's pid (not interleaved, not silently replaced). The
    lock is a dotfile beside the folder, flock'ed (released by the kernel if the process dies)."""
    import fcntl

    folder = Path(folder)
    lock = folder.parent / f".{folder.name}.lock"
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as e:
        raise UserError(f"{folder}: cannot write there ({e.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise UserError(f"{folder}: in use by another rtdetr-edge process (pid {holder}); wait for it to finish "
                        f"or choose another folder") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield folder
    finally:
        try:
            lock.unlink()
        except OSError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextmanager
def atomic_dir(out, force=False, replaceable=None):
    with folder_lock(out):
        with _atomic_dir(out, force, replaceable) as tmp:
            yield tmp


@contextmanager
def _atomic_dir(out, force=False, replaceable=None):
    """Yield a temporary folder beside `out`; on success it becomes `out`, on failure it disappears.

    `force` replaces an existing `out` only when `replaceable(out)` says it is one of ours (bundle.is_bundle:
    never a user's folder or file); without `replaceable`, nothing is replaced."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        if not force:
            raise UserError(f"{out}: exists; choose another --out or pass --force")
        if not out.is_dir() or replaceable is None or not replaceable(out):
            raise UserError(f"{out}: exists and is not a bundle of ours; --force replaces only bundles "
                            "(remove it yourself or choose another --out)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{out.parent}: cannot create the folder ({e.strerror})") from None
    clean_stale(out)
    tmp = _tmp_name(out)
    try:
        tmp.mkdir(mode=0o755)
    except OSError as e:
        raise UserError(f"{out}: cannot write ({e.strerror})") from None
    try:
        yield tmp
        if out.exists():
            if not force:  # it appeared while we worked: never replaced without --force
                raise UserError(f"{out}: appeared while this was being written; nothing was replaced")
            old = _tmp_name(out, ".old")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_report_files(folder, stem, report: dict, markdown: str, chart, option="--report") -> dict:
    """A report as STEM.json, STEM.md and STEM.png (drawn by `chart(report, path)`) in `folder`, each
    written atomically; returns their paths. A `folder` that is a file is the user's mistake (`option`)."""
    import json

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{option} {folder}: exists and is not a folder")
    atomic_write_text(folder / f"{stem}.json", json.dumps(report, indent=2))
    atomic_write_text(folder / f"{stem}.md", markdown)
    with atomic_path(folder / f"{stem}.png", suffix=".png") as tmp:
        chart(report, tmp)
    return {k: folder / f"{stem}.{k}" for k in ("json", "md", "png")}
