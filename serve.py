"""A local page to draw a digit on and watch the LSTM read it, row by row.

    python serve.py runs/RUN                  # then open the address it prints
    python serve.py runs/RUN --port=0         # any free port

The page (page/: HTML, JavaScript and CSS, no CDN: it works offline) sends
the drawing; the server prepares it exactly as predict.py prepares an image
file, runs the model once and answers with the 28x28 image the model sees and
the probabilities of the ten digits after every row (on the pixel tasks, after
every 28th pixel); a second request gives the write, keep and read gates and
the cell state at the same steps (gates.py), which the page draws beside them.
Python's standard HTTP server is enough for one local page. It listens on
127.0.0.1 unless --host says otherwise (then anyone who can reach the machine
can use it: there is no authentication).
"""
import contextlib
import http.server
import ipaddress
import json
import os
import re
import socket
import sys
import threading

import numpy as np

import predict
from lstm_mnist import context, entry_point, errors, gates, images, reading, saved_run
from lstm_mnist.tasks import SHORT_SEQUENCE

PAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page")
FILES = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/style.css": ("style.css", "text/css; charset=utf-8")}
MAX_BODY = 4 * 1024 * 1024  # bytes of a request: a 1024x1024 drawing as JSON fits
MAX_SIDE = 1024  # pixels of a drawing's width or height
ANSWERS = {"/api/read": "read", "/api/gates": "gates"}  # what the page posts a drawing to: the Reader's method


class BadRequest(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Reader:
    """The model, restored once. TF1's Session.run may be called from several threads at once,
    so every request thread shares it.

    The page plays the reading back in SHORT_SEQUENCE frames: after each row, or on the pixel
    tasks' 784 steps after every 28th pixel (`every` steps a frame)."""

    def __init__(self, cfg, checkpoint):
        self.cfg, self.checkpoint = cfg, checkpoint
        self.sess, self.model = predict.restored_session(cfg, checkpoint)
        self.every = max(1, cfg.n_steps // SHORT_SEQUENCE)
        order = self.model.order
        self.reading = {"step": reading.step_name(cfg.n_steps), "n_steps": cfg.n_steps, "every": self.every,
                        "order": None if order is None else order.tolist()}

    def frames(self, values):
        """The values [n_steps, ...] at the end of each frame."""
        return values[self.every - 1::self.every]

    def read(self, image):
        """What the page shows for a PIL image of a drawing: the image the model sees, the
        probabilities at the end of each frame, and how it reads (`reading`: its step, "row" or
        "pixel", the steps, the steps a frame, and the pixel order, null for reading order)."""
        pixels = images.digit_pixels(image)
        steps = self.sess.run(self.model.step_probabilities, self.model.feed(pixels))[0]
        return {"image": np.round(pixels[0], 4).tolist(), "steps": np.round(self.frames(steps), 5).tolist(),
                "answer": int(np.argmax(steps[-1])), "blank": images.is_blank(pixels), "reading": self.reading}

    def gates(self, image):
        """The gates the page shows for a PIL image of a drawing, layer by layer from the bottom:
        write, keep, read and the cell state, each [frames][n_hidden], and the units in the order
        gates.png draws them."""
        every_layer = gates.gates_of(self.sess, self.model.gates, self.model.feed(images.digit_pixels(image)))
        return {"layers": [{"units": gates.unit_order(values["write"]).tolist(),
                            **{name: np.round(self.frames(values[name][0]), 3).tolist()
                               for name in ("write", "keep", "read", "cell")}} for values in every_layer]}

    def close(self):
        self.sess.close()


def parse_drawing(body):
    """A PIL image from the page's JSON: {"width": W, "height": H, "pixels": [W*H gray values 0-255]}."""
    from PIL import Image

    try:
        drawing = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(400, f"the body is not JSON ({e})") from e
    except RecursionError:  # lists nested deeper than Python's stack: no drawing is
        raise BadRequest(400, "the body is nested too deeply to be a drawing") from None
    if not isinstance(drawing, dict) or not {"width", "height", "pixels"} <= drawing.keys():
        raise BadRequest(400, 'expected {"width": W, "height": H, "pixels": [W*H numbers 0-255]}')
    width, height = drawing["width"], drawing["height"]
    if not all(type(side) is int and 1 <= side <= MAX_SIDE for side in (width, height)):
        raise BadRequest(400, f"width and height must be whole numbers from 1 to {MAX_SIDE}")
    try:
        pixels = np.asarray(drawing["pixels"], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise BadRequest(400, "pixels must be a flat list of numbers") from e
    if pixels.ndim != 1:
        raise BadRequest(400, f"pixels must be a flat list of width x height numbers, row after row; this one is "
                              f"nested, of shape {list(pixels.shape)}")
    if pixels.shape != (width * height,):
        raise BadRequest(400, f"pixels holds {pixels.size} values, width x height is {width * height}")
    if not np.all(np.isfinite(pixels)) or pixels.min() < 0 or pixels.max() > 255:
        raise BadRequest(400, "pixels must be finite numbers from 0 to 255")
    return Image.fromarray(np.rint(pixels).astype(np.uint8).reshape(height, width), "L")


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "lstm-mnist"
    timeout = 30  # seconds a slow client may hold a connection

    def do_GET(self):
        if self.path not in FILES:
            return self.send_json(404, {"error": f"no page at {self.path}"})
        name, content_type = FILES[self.path]
        with open(os.path.join(PAGE_DIR, name), "rb") as f:
            self.send_body(200, f.read(), content_type)

    def do_POST(self):
        try:
            if self.path not in ANSWERS:
                raise BadRequest(404, f"nothing to post to at {self.path}; the model reads at /api/read, and "
                                      f"gives its gates at /api/gates")
            length = self.headers.get("Content-Length")
            if length is None or not re.fullmatch(r"[0-9]+", length):  # isdigit() takes '²', which int() refuses
                raise BadRequest(411, "a Content-Length is needed, in ASCII digits")
            if int(length) > MAX_BODY:
                self.close_connection = True  # the body is not read: the connection cannot go on
                raise BadRequest(413, f"the body is over {MAX_BODY} bytes")
            drawing = parse_drawing(self.rfile.read(int(length)))
            self.send_json(200, getattr(self.server.reader, ANSWERS[self.path])(drawing))
        except BadRequest as e:
            self.send_json(e.status, {"error": str(e)})

    def refuse_method(self):
        self.send_json(405, {"error": f"{self.command} is not allowed here: GET the page, POST to "
                                      f"{' or '.join(ANSWERS)}"}, {"Allow": "GET, POST"})

    do_PUT = do_DELETE = do_PATCH = refuse_method

    def send_json(self, status, payload, headers=None):
        self.send_body(status, json.dumps(payload).encode(), "application/json", headers)

    def send_body(self, status, body, content_type, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # a request log would bury the address line; errors go back to the page


class Server(http.server.ThreadingHTTPServer):
    """A thread per request, every one of them ended and joined on close.

    Not daemon threads: one still running when Python exits is stopped by
    pthread_exit inside the C++ runtime TensorFlow loads, and the process
    aborts (SIGABRT, "FATAL: exception not rethrown") instead of exiting with
    its code. Closing shuts the open connections down first, so a slow or idle
    client cannot hold the join for its whole timeout.
    """

    daemon_threads = False  # ThreadingHTTPServer's default is True
    request_queue_size = 256  # the listen backlog (socketserver's default is 5): a burst of a page's requests waits


    def __init__(self, address, reader):
        self.reader = reader
        self.connections, self.connections_lock = set(), threading.Lock()  # before a failed bind calls server_close
        super().__init__(address, Handler)

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        """A client that hung up before its answer is one line, not a traceback; anything else is a bug."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            return super().handle_error(request, client_address)
        print(f"{client_address[0]}:{client_address[1]} hung up before its answer ({error.strerror or error})",
              file=sys.stderr)

    def service_actions(self):
        context.check()  # serve_forever calls this every half second: a signal stops it here

    def server_close(self):
        with self.connections_lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):  # the client may have gone already
                    connection.shutdown(socket.SHUT_RDWR)
        super().server_close()  # joins the request threads


def make_server(reader, host="127.0.0.1", port=0):
    """A Server for `reader`, listening (port 0: any free port), that a signal stops."""
    if not 0 <= port <= 65535:
        raise errors.ConfigError(f"--port={port} is not a port: give one from 1 to 65535 (0: any free port)")
    try:
        return Server((host, port), reader)
    except OSError as e:
        raise errors.ConfigError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port "
                                 f"or --host") from e


def serve_in_thread(server):
    """Serve from a background thread (tests, notebooks); returns the thread."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def host_warning(host):
    """A warning line for a host other clients can reach, or None for loopback."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    return None if loopback else (f"warning: --host={host}: the page and the model are reachable from other "
                                  f"machines, without authentication")


def add_arguments(parser):
    parser.add_argument("model", metavar="RUN_DIR|CKPT", help="a run folder (its latest checkpoint) or a checkpoint")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on; 0: any free port (default: 8000)")


def serve(overrides, arguments):
    cfg, checkpoint = saved_run.open_saved_run(arguments.model, overrides, predict.script.SETTINGS)
    with contextlib.closing(Reader(cfg, checkpoint)) as reader, \
            make_server(reader, arguments.host, arguments.port) as server:
        warning = host_warning(arguments.host)
        if warning:
            print(warning, file=sys.stderr)
        host, port = server.server_address[:2]
        context.now("while serving: nothing is written, nothing to lose")
        print(f"Serving {checkpoint} at http://{host}:{port}/ (Ctrl-C to stop)")
        server.serve_forever()


def main(argv=None):
    return entry_point.run(argv, __doc__, add_arguments, predict.script.SETTINGS, serve)


if __name__ == "__main__":
    entry_point.exit_process(main())
