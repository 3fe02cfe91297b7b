"""A fake IP camera for tests and benchmarks: synthetic frames as an MJPEG HTTP stream, in real time.

It plays a synthetic scene (edge_agent.footfall.synthetic) at its frame rate,
looping, to every client of `http://127.0.0.1:PORT/stream.mjpg`; `stop()` makes
it vanish (connections cut, port closed) and `start()` brings it back on the
same port, as a camera that loses power does.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2

from edge_agent.footfall.synthetic import Scene


class FakeCamera:
    def __init__(self, scene: Scene, port: int):
        self.port = port
        self.fps = scene.spec.fps
        self.jpegs = [cv2.imencode(".jpg", frame)[1].tobytes() for frame in scene.frames()]
        self.server: ThreadingHTTPServer | None = None
        self.gone = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        camera = self

        class Stream(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                start, index = time.monotonic(), 0
                try:
                    while not camera.gone.is_set():
                        jpeg = camera.jpegs[index % len(camera.jpegs)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                        index += 1
                        delay = start + index / camera.fps - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                except (BrokenPipeError, ConnectionResetError):
                    return

            def log_message(self, *args: object) -> None:
                return

        return Stream

    def start(self) -> FakeCamera:
        self.gone.clear()
        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Vanish: stop streaming to current clients and refuse new ones."""
        self.gone.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

