"""A real RTSP server for the demo's test: GStreamer's gst-rtsp-server (Debian: gir1.2-gst-rtsp-server-1.0,
python3-gi, gstreamer1.0-plugins-good) serving an MJPG .avi as RTP/JPEG at 10 fps, on 127.0.0.1.

    /usr/bin/python3 tests/rtsp_server.py VIDEO.avi PORT     -> rtsp://127.0.0.1:PORT/live

Runs with Debian's own python3 (the GObject bindings come from Debian, not pip). Prints one line when serving.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main(video, port):
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    # the file played in real time, decoded and re-encoded as RTP/JPEG
    factory.set_launch(f"( filesrc location={video} ! avidemux ! jpegdec ! videoconvert ! "
                       f"videorate ! video/x-raw,framerate=10/1 ! jpegenc quality=90 ! rtpjpegpay name=pay0 pt=26 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/live", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print(f"serving rtsp://127.0.0.1:{port}/live", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
