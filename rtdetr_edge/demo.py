"""The camera demo: frames from a camera, a video file, an RTSP/HTTP stream, a folder of images or a Jetson
CSI camera, through any runtime (`predict`'s), with boxes, labels, scores and an FPS/latency overlay drawn;
optionally shown, saved as a video and written as JSON lines. Device side: no PyTorch unless the model is a
checkpoint.

Capture runs in its own thread. A live source (camera, stream, CSI) keeps only the newest frame, so a slow
model never builds up lag: frames it could not process are counted as dropped. A file or a folder is read in
order, every frame. A live source that drops or stalls is reopened with back-off, said once per outage; a
file that ends ends the demo. Ctrl-C or `q` end it cleanly: the capture is released and the saved video is
finished (written under a temporary name and renamed, so it always plays).
"""

import contextlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UserError
from .runtime.base import open_model

LIVE = ("camera", "stream", "csi")


def parse_source(spec: str) -> tuple:
    """'0' -> ('camera', 0); 'rtsp://..' / 'http(s)://..' -> ('stream', url); 'csi://0' -> ('csi', 0);
    a folder -> ('folder', path); a file -> ('file', path)."""
    spec = str(spec)
    if re.fullmatch(r"\d{1,2}", spec):
        return "camera", int(spec)
    if re.match(r"(rtsps?|https?|rtmp)://", spec, re.I):
        return "stream", spec
    m = re.fullmatch(r"csi://(\d{1,2})", spec, re.I)
    if m:
        return "csi", int(m.group(1))
    path = Path(spec)
    if path.is_dir():
        return "folder", path
    if path.is_file():
        return "file", path
    raise UserError(f"--source {spec}: no such file or folder (or give a camera index like 0, rtsp://..., "
                    f"http://..., csi://0)")


def gstreamer_available() -> bool:
    import cv2

    return bool(re.search(r"GStreamer:\s+YES", cv2.getBuildInformation()))


def csi_pipeline(sensor: int, width=1280, height=720, fps=30) -> str:
    """The GStreamer pipeline of a Jetson CSI camera (nvarguscamerasrc), newest frame only."""
    return (f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width={width},height={height},"
            f"framerate={fps}/1 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
            f"appsink drop=true max-buffers=1 sync=false")


def display_available() -> bool:
    """A GUI build of OpenCV and a display to show on."""
    import cv2

    gui = re.search(r"GUI:\s+(\w+)", cv2.getBuildInformation())
    has_gui = bool(gui) and gui.group(1).upper() not in ("NONE", "NO")
    return has_gui and bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.name == "nt")


def _quiet_capture_logs():
    """A dropped stream makes FFmpeg and OpenCV print a line per reconnect attempt; the demo says once per
    outage what happened instead. A user's own OPENCV_FFMPEG_LOGLEVEL / OPENCV_LOG_LEVEL still win."""
    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    if "OPENCV_LOG_LEVEL" not in os.environ:
        try:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        except AttributeError:
            pass


class FrameSource:
    """Frames of one source from a capture thread. `get()` returns (index, frame BGR, capture ms) or None at
    the end. Live sources: the newest frame only; files and folders: every frame, in order."""

    def __init__(self, spec, on_event=None, open_timeout_s=5.0, read_timeout_s=5.0, backoff=(0.5, 8.0)):
        self.kind, self.target = parse_source(spec)
        _quiet_capture_logs()
        self.spec = str(spec)
        self.live = self.kind in LIVE
        self.on_event = on_event or (lambda msg: None)
        self.open_timeout_s, self.read_timeout_s, self.backoff = open_timeout_s, read_timeout_s, backoff
        self.read = self.dropped = self.reconnects = self.outages = 0
        self.fps = None
        self._cond = threading.Condition()
        self._queue = []  # files: bounded queue of every frame; live: at most the newest
        self._done = False
        self._stop = threading.Event()
        self._cap = None
        self._error = None
        if self.kind == "csi" and not gstreamer_available():
            raise UserError("--source csi://: this OpenCV has no GStreamer (pip's wheels do not); on a Jetson use the "
                            "system OpenCV: sudo apt install python3-opencv, and a venv with --system-site-packages")
        if self.kind == "folder":
            from .preprocess import list_images

            self._files = list_images(self.target)
        else:
            self._cap = self._open()
            if self._cap is None:
                raise UserError(f"--source {self.spec}: cannot open it" + (
                    " (is the camera connected and free?)" if self.kind == "camera" else ""))
            fps = self._cap.get(5)  # CAP_PROP_FPS
            self.fps = fps if fps and 0 < fps < 240 else None
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _open(self):
        import cv2

        if self.kind == "csi":
            cap = cv2.VideoCapture(csi_pipeline(self.target), cv2.CAP_GSTREAMER)
        elif self.kind == "stream":
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout_s * 1000),
                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout_s * 1000)]
            cap = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, params)
        elif self.kind == "camera":
            cap = cv2.VideoCapture(self.target)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        else:
            cap = cv2.VideoCapture(str(self.target))
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    # the capture thread
    def _run(self):
        try:
            if self.kind == "folder":
                self._run_folder()
            elif self.live:
                self._run_live()
            else:
                self._run_file()
        except Exception as e:  # handed to the main thread, which raises it
            self._error = e
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()
            if self._cap is not None:
                self._cap.release()

    def _put_in_order(self, frame):
        """Files and folders: wait for room (every frame is processed, none dropped)."""
        with self._cond:
            while len(self._queue) >= 4 and not self._stop.is_set():
                self._cond.wait(0.1)
            self._queue.append((self.read, frame, self._t_read))
            self.read += 1
            self._cond.notify_all()

    def _run_folder(self):
        from .preprocess import read_image

        for path in self._files:
            if self._stop.is_set():
                return
            t = time.perf_counter()
            try:
                rgb = read_image(path)
            except UserError as e:
                self.on_event(f"skipped {e}")
                continue
            self._t_read = (time.perf_counter() - t) * 1e3
            self._put_in_order(rgb[:, :, ::-1].copy())

    def _run_file(self):
        while not self._stop.is_set():
            t = time.perf_counter()
            ok, frame = self._cap.read()
            if not ok:
                return
            self._t_read = (time.perf_counter() - t) * 1e3
            self._put_in_order(frame)

    def _run_live(self):
        delay = self.backoff[0]
        lost_at = None
        while not self._stop.is_set():
            if self._cap is None:  # reconnecting
                self._cap = self._open()
                if self._cap is None:
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.backoff[1])
                    continue
                self.reconnects += 1
                self.on_event(f"{self.spec}: back after {time.monotonic() - lost_at:.1f} s")
                delay, lost_at = self.backoff[0], None
            t = time.perf_counter()
            ok, frame = self._cap.read()
            if not ok or frame is None:
                if lost_at is None:
                    lost_at = time.monotonic()
                    self.outages += 1
                    self.on_event(f"{self.spec}: stream lost; reconnecting (back-off {self.backoff[0]:g}-"
                                  f"{self.backoff[1]:g} s)")
                self._cap.release()
                self._cap = None
                continue
            with self._cond:
                if self._queue:
                    self.dropped += 1  # the model did not take the previous frame in time
                self._queue[:] = [(self.read, frame, (time.perf_counter() - t) * 1e3)]
                self.read += 1
                self._cond.notify_all()

    def get(self, timeout=None):
        """The next frame (index, BGR, capture ms), or None when the source ended (files) or on stop."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                if self._error is not None:
                    raise self._error
                if self._done or self._stop.is_set():
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return "timeout"
                self._cond.wait(0.1 if left is None else min(left, 0.1))
            item = self._queue.pop(0)
            self._cond.notify_all()
            return item

    def stop(self):
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=self.read_timeout_s + 2)


@dataclass
class Stats:
    frames_read: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    reconnects: int = 0
    outages: int = 0
    ended_by: str = ""
    resized_frames: int = 0  # frames of another size than the first, scaled into the saved video
    latency_ms: dict = field(default_factory=lambda: {"capture": [], "inference": [], "draw": [], "total": []})
    wall_s: float = 0.0

    def summary(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "latency_ms"}
        out["fps"] = self.frames_processed / self.wall_s if self.wall_s > 0 else 0.0
        for stage, values in self.latency_ms.items():
            if values:
                a = np.asarray(values)
                out[f"{stage}_ms"] = {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)),
                                      "p95": float(np.percentile(a, 95))}
        return out


def overlay(img, fps, capture_ms, infer_ms, draw_ms, note=""):
    import cv2

    text = f"{fps:5.1f} FPS  capture {capture_ms:5.1f} ms  inference {infer_ms:6.1f} ms  draw {draw_ms:4.1f} ms"
    for i, line in enumerate([text] + ([note] if note else [])):
        y = 20 + 22 * i
        cv2.putText(img, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def class_filter(classes, names) -> set:
    """--classes as names or indices -> a set of label indices; an unknown one is an error."""
    if not classes:
        return None
    wanted = set()
    for c in classes:
        for item in str(c).split(","):
            item = item.strip()
            if item.isdigit():
                if names and int(item) >= len(names):
                    raise UserError(f"--classes: {item} is not a class index of this model (0-{len(names) - 1}: "
                                    f"{', '.join(names)})")
                wanted.add(int(item))
            elif item in (names or []):
                wanted.add(names.index(item))
            elif item:
                raise UserError(f"--classes: unknown class {item!r} (known: {', '.join(names or []) or 'indices'})")
    return wanted


def _finish(src, stats, start):
    src.stop()
    stats.wall_s = time.perf_counter() - start
    stats.frames_read, stats.frames_dropped = src.read, src.dropped
    stats.reconnects, stats.outages = src.reconnects, src.outages


def _video_writer(stack, save, fps, shape):
    """An OpenCV writer on a temporary file that becomes `save` when the demo ends (released first)."""
    import cv2

    from .fsutil import atomic_path

    save = Path(save)
    tmp = stack.enter_context(atomic_path(save, suffix=save.suffix or ".mp4"))
    codec = "MJPG" if save.suffix.lower() == ".avi" else "mp4v"
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*codec), fps or 25.0, (shape[1], shape[0]))
    if not writer.isOpened():
        raise UserError(f"--save {save}: OpenCV cannot write this video (use .mp4 or .avi)")
    stack.callback(writer.release)
    return writer


def run_demo(model, source, backend=None, conf=0.5, classes=None, show=False, save=None, max_frames=None,
             json_path=None, on_event=print, stall_s=30.0, source_options=None) -> dict:
    """Run the demo until the source ends, `max_frames`, `q`, Ctrl-C, or a live source gives no frame for
    `stall_s` seconds in all (reconnecting included); returns the summary."""
    import cv2

    from .fsutil import atomic_path
    from .predict import draw
    from .runtime.base import Detections

    if save is not None and Path(save).suffix.lower() not in (".mp4", ".avi", ".mov", ".mkv"):
        raise UserError(f"--save {save}: give a video file name ending in .mp4 or .avi")
    for option, path in (("--save", save), ("--json", json_path)):
        if path is not None and Path(path).is_dir():
            raise UserError(f"{option} {path}: is a folder; give a file name")
    if show and not display_available():
        raise UserError("--show: this OpenCV cannot open windows (the headless build, or no display); install "
                        "the GUI build with pip install 'rtdetr-edge[gui]', or run with --headless --save out.mp4")
    runtime = open_model(model, backend)
    names = runtime.class_names or []
    wanted = class_filter(classes, names)
    src = FrameSource(source, on_event=on_event, **(source_options or {}))
    stats = Stats()
    start = time.perf_counter()
    # files are written under temporary names and renamed when the demo ends normally (source end,
    # --max-frames, q, Ctrl-C); an error removes them. Callbacks run last-in first-out: the writer is
    # released before its file is renamed.
    with contextlib.ExitStack() as stack:
        stack.callback(_finish, src, stats, start)
        writer = json_file = None
        if json_path is not None:
            tmp = stack.enter_context(atomic_path(Path(json_path), suffix=".jsonl"))
            try:
                json_file = stack.enter_context(open(tmp, "w"))
            except OSError as e:  # a file system that refuses files where os.access said yes (procfs, FUSE)
                raise UserError(f"--json {json_path}: cannot write there ({e.strerror})") from None
        if show:
            stack.callback(cv2.destroyAllWindows)
        src.start()
        last_frame_at = time.monotonic()
        fps_ema = None
        stack.enter_context(_stop_signals())  # SIGTERM/SIGHUP end it like Ctrl-C: the recording is kept
        try:
            while True:
                item = src.get(timeout=1.0)
                if item == "timeout":
                    if time.monotonic() - last_frame_at > stall_s:
                        stats.ended_by = f"no frame for {stall_s:g} s"
                        break
                    continue
                if item is None:
                    stats.ended_by = "end of source"
                    break
                last_frame_at = time.monotonic()
                index, frame, capture_ms = item
                t0 = time.perf_counter()
                rgb = np.ascontiguousarray(frame[:, :, ::-1])
                det = runtime.detect([rgb])[0].filter(conf)
                if wanted is not None:
                    keep = np.isin(det.labels, list(wanted))
                    det = Detections(det.labels[keep], det.boxes[keep], det.scores[keep])
                t1 = time.perf_counter()
                img = draw(rgb, det, names)
                fps_now = 1.0 / max(t1 - t0, 1e-6)
                fps_ema = fps_now if fps_ema is None else 0.9 * fps_ema + 0.1 * fps_now
                t2 = time.perf_counter()
                overlay(img, fps_ema, capture_ms, (t1 - t0) * 1e3, (t2 - t1) * 1e3,
                        f"{src.dropped} dropped, {src.reconnects} reconnects" if src.live else "")
                if save is not None:
                    if writer is None:
                        writer = _video_writer(stack, save, src.fps, img.shape)
                        video_shape = img.shape[:2]
                    if img.shape[:2] != video_shape:  # OpenCV's writer drops such frames without a word
                        if not stats.resized_frames:
                            on_event(f"frame {index} is {img.shape[1]}x{img.shape[0]}, the video "
                                     f"{video_shape[1]}x{video_shape[0]}: frames of another size are scaled into it")
                        stats.resized_frames += 1
                        img = cv2.resize(img, (video_shape[1], video_shape[0]), interpolation=cv2.INTER_AREA)
                    writer.write(img)
                if json_file is not None:
                    json_file.write(json.dumps({
                        "frame": index, "time_s": round(time.perf_counter() - start, 4),
                        "detections": [{"label": int(lab), "name": names[int(lab)] if int(lab) < len(names) else None,
                                        "score": round(float(sc), 4), "box": [round(float(v), 1) for v in box]}
                                       for lab, box, sc in zip(det.labels, det.boxes, det.scores)]}) + "\n")
                stats.frames_processed += 1
                for stage, v in (("capture", capture_ms), ("inference", (t1 - t0) * 1e3),
                                 ("draw", (t2 - t1) * 1e3), ("total", (time.perf_counter() - t0) * 1e3)):
                    stats.latency_ms[stage].append(v)
                if show:
                    cv2.imshow("rtdetr-edge demo (q to quit)", img)
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        stats.ended_by = "q"
                        break
                if max_frames is not None and stats.frames_processed >= max_frames:
                    stats.ended_by = f"--max-frames {max_frames}"
                    break
        except KeyboardInterrupt:
            stats.ended_by = "Ctrl-C"
        except _Stopped as e:
            stats.ended_by = str(e)
    return stats.summary()


class _Stopped(Exception):
    """A stop signal (systemd's or docker's SIGTERM, a closed ssh's SIGHUP) during the demo."""


@contextlib.contextmanager
def _stop_signals():
    """While the demo runs, SIGTERM and SIGHUP end it as Ctrl-C does (the video and JSON finished and kept),
    instead of killing the process with the recording half-written; and Ctrl-C (SIGINT) ends it even when the
    process started with SIGINT ignored (a script's background job; Python then leaves it ignored and the demo
    ran on). Only the main thread can set handlers."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise _Stopped(signal.Signals(signum).name)

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    old[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt: "Ctrl-C"
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
