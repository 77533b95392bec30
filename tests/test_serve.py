"""serve.py: the drawing page's server, on 127.0.0.1, with bounded clients."""
import concurrent.futures
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
from helpers import ROOT, served, tiny_checkpoint
from PIL import Image

import serve
from lstm_mnist import gates, images, tasks

TIMEOUT = 30  # seconds any one request may take


@pytest.fixture(scope="module")
def server(tiny_run):
    with served(tiny_run[0], tiny_checkpoint(tiny_run)) as (base, reader):
        yield base, reader


def drawing_of(image, size=280):
    """An MNIST image (784,) as the page sends it: a size x size canvas, white on black, 0-255."""
    big = Image.fromarray(np.uint8(np.rint(image.reshape(28, 28) * 255))).resize((size, size), Image.Resampling.BICUBIC)
    return {"width": size, "height": size, "pixels": np.asarray(big).ravel().tolist()}


def request(base, path, method="GET", body=None, headers=None):
    """(status, parsed JSON or text, headers) of one request."""
    connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        kind = response.getheader("Content-Type", "")
        return response.status, json.loads(data) if kind == "application/json" else data.decode(), response.headers
    finally:
        connection.close()


def post(base, payload, path="/api/read"):
    return request(base, path, "POST", json.dumps(payload), {"Content-Type": "application/json"})


@pytest.mark.parametrize("path,kind,text", [("/", "text/html", "<canvas id=\"pad\""),
                                            ("/app.js", "text/javascript", "/api/read"),
                                            ("/style.css", "text/css", "#pad")])
def test_the_page_and_its_files_are_served_by_the_project(server, path, kind, text):
    status, body, headers = request(server[0], path)
    assert status == 200 and headers["Content-Type"].startswith(kind) and text in body
    assert "http://" not in body and "https://" not in body  # nothing from a CDN: it works offline


def test_a_drawing_is_read_as_predict_reads_the_same_image(server, mnist, tmp_path):
    base, reader = server
    image = mnist.test.images[3]
    drawing = drawing_of(image)
    status, result, _ = post(base, drawing)
    assert status == 200 and result["blank"] is False
    steps = np.array(result["steps"])
    assert steps.shape == (28, 10) and np.allclose(steps.sum(axis=1), 1, atol=1e-3)
    assert result["answer"] == int(np.argmax(steps[-1]))
    # One preprocessing for both: the same picture as a PNG file gives predict.py the same 28x28 image.
    Image.fromarray(np.uint8(drawing["pixels"]).reshape(280, 280)).save(tmp_path / "drawing.png")
    np.testing.assert_allclose(result["image"], images.load_digit(str(tmp_path / "drawing.png"))[0], atol=1e-4)
    assert np.corrcoef(result["image"], image)[0, 1] > 0.9  # and it is the digit that was drawn


def test_the_gates_of_a_drawing_are_the_models_gates_of_the_image_it_reads(server, mnist):
    base, reader = server
    drawing = drawing_of(mnist.test.images[3])
    status, result, _ = post(base, drawing, "/api/gates")
    assert status == 200 and set(result) == {"layers"} and len(result["layers"]) == 1
    result = result["layers"][0]
    assert set(result) == {"units", "write", "keep", "read", "cell"}
    seen = np.array(post(base, drawing)[1]["image"], dtype=np.float32)[None]  # the image /api/read says it read
    expected = gates.gates_of(reader.sess, reader.model.gates, reader.model.feed(seen))[0]
    for name in ("write", "keep", "read", "cell"):
        assert np.array(result[name]).shape == (28, reader.cfg.n_hidden)
        np.testing.assert_allclose(result[name], expected[name][0], atol=2e-3)  # both rounded, to 4 and 3 places
    assert sorted(result["units"]) == list(range(reader.cfg.n_hidden))


def test_a_permuted_run_is_read_back_every_28th_pixel_in_its_order(permuted_run, mnist):
    cfg, checkpoint = permuted_run
    with served(cfg, checkpoint) as (base, reader):
        status, result, _ = post(base, drawing_of(mnist.test.images[0]))
        _, gates_read, _ = post(base, drawing_of(mnist.test.images[0]), "/api/gates")
        image = np.array(result["image"], dtype=np.float32).reshape(1, 784, 1)
        every_step = reader.sess.run(reader.model.step_probabilities, reader.model.feed(image))[0]
    assert status == 200
    assert result["reading"] == {"step": "pixel", "n_steps": 784, "every": 28,
                                 "order": tasks.permutation(cfg.permutation_seed).tolist()}
    # a frame for every 28 pixels read: the model's answer after pixels 28, 56, ..., 784
    np.testing.assert_allclose(result["steps"], every_step[27::28], rtol=0, atol=1e-3)
    assert result["answer"] == int(np.argmax(every_step[-1]))
    assert all(np.array(gates_read["layers"][0][name]).shape == (28, 8) for name in ("write", "keep", "read", "cell"))


def test_a_blank_drawing_says_so(server):
    status, result, _ = post(server[0], {"width": 10, "height": 10, "pixels": [0] * 100})
    assert status == 200 and result["blank"] is True


@pytest.mark.parametrize("method,path,body,status,message", [
    ("PUT", "/api/read", "{}", 405, "PUT is not allowed here"),
    ("DELETE", "/", None, 405, "DELETE is not allowed here"),
    ("GET", "/secret", None, 404, "no page at /secret"),
    ("POST", "/elsewhere", "{}", 404, "nothing to post to at /elsewhere"),
    ("POST", "/api/read", "{not json", 400, "the body is not JSON"),
    ("POST", "/api/read", "[1, 2]", 400, 'expected {"width": W'),
    ("POST", "/api/read", json.dumps({"width": 2, "height": 2, "pixels": [0, 1, 2]}), 400, "pixels holds 3 values"),
    ("POST", "/api/read", json.dumps({"width": 0, "height": 2, "pixels": []}), 400, "whole numbers from 1 to 1024"),
    ("POST", "/api/read", json.dumps({"width": 2000, "height": 1, "pixels": [0] * 2000}), 400, "from 1 to 1024"),
    ("POST", "/api/read", '{"width": 2, "height": 1, "pixels": [0, NaN]}', 400, "finite numbers from 0 to 255"),
    ("POST", "/api/read", '{"width": 2, "height": 1, "pixels": [0, 1e400]}', 400, "finite numbers from 0 to 255"),
    ("POST", "/api/read", '{"width": 2, "height": 1, "pixels": [0, 300]}', 400, "finite numbers from 0 to 255"),
    ("POST", "/api/read", '{"width": 2, "height": 1, "pixels": [0, "x"]}', 400, "a flat list of numbers"),
    ("POST", "/api/read", "[" * 100000 + "]" * 100000, 400, "nested too deeply to be a drawing"),
    ("PATCH", "/api/gates", "{}", 405, "POST to /api/read or /api/gates"),
    ("POST", "/api/gates", "{not json", 400, "the body is not JSON"),
    ("POST", "/api/gates", json.dumps({"width": 2, "height": 2, "pixels": [0, 1, 2]}), 400, "pixels holds 3 values"),
    ("POST", "/api/read", json.dumps({"width": 28, "height": 28, "pixels": [[0] * 28] * 28}), 400,
     "pixels must be a flat list of width x height numbers, row after row; this one is nested, of shape [28, 28]"),
])
def test_a_bad_request_is_a_4xx_with_a_message_and_the_server_keeps_serving(server, mnist, method, path, body,
                                                                             status, message):
    got, result, _ = request(server[0], path, method, body, {"Content-Type": "application/json"})
    assert got == status and message in result["error"]
    assert post(server[0], drawing_of(mnist.test.images[0], size=28))[0] == 200


def test_a_content_length_in_other_digits_than_ascii_is_refused(server, mnist):
    connection = socket.create_connection(server[0].removeprefix("http://").split(":"), timeout=TIMEOUT)
    with connection:
        # Headers are read as latin-1: this byte is '²', for which str.isdigit() is true and int() fails.
        connection.sendall("POST /api/read HTTP/1.1\r\nHost: x\r\nContent-Length: ²\r\n\r\n{}".encode("latin-1"))
        answer = connection.makefile("rb").readline()
    assert answer.startswith(b"HTTP/1.0 411 ")
    assert post(server[0], drawing_of(mnist.test.images[0], size=28))[0] == 200


def test_a_burst_of_requests_is_answered_without_resets(server, mnist):
    drawing = drawing_of(mnist.test.images[0], size=28)
    with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
        answers = list(pool.map(lambda _: post(server[0], drawing)[0], range(200), timeout=4 * TIMEOUT))
    assert answers == [200] * 200


def test_a_client_that_hangs_up_is_one_line_on_the_servers_stderr(server, mnist, capsys):
    body = json.dumps(drawing_of(mnist.test.images[0])).encode()
    client = socket.create_connection(server[0].removeprefix("http://").split(":"), timeout=TIMEOUT)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
    client.sendall(b"POST /api/read HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    client.close()
    err, deadline = "", time.monotonic() + TIMEOUT
    while "hung up" not in err and time.monotonic() < deadline:
        err += capsys.readouterr().err
        time.sleep(0.01)
    assert re.fullmatch(r"127\.0\.0\.1:\d+ hung up before its answer \([^)\n]+\)\n", err), err


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_out_of_range_is_one_line(tiny_run, capsys, port):
    assert serve.main([tiny_run[1].run_dir, f"--port={port}"]) == 2
    assert capsys.readouterr().err == (f"error: --port={port} is not a port: give one from 1 to 65535 "
                                       f"(0: any free port)\n")


def test_a_body_over_the_limit_is_refused_unread(server):
    status, result, _ = request(server[0], "/api/read", "POST", "{}",
                                {"Content-Length": str(serve.MAX_BODY + 1), "Content-Type": "application/json"})
    assert status == 413 and "over" in result["error"]


def test_several_clients_at_once_get_the_same_answers(server, mnist):
    drawings = [drawing_of(mnist.test.images[k], size=56) for k in range(4)]
    alone = [post(server[0], d)[1] for d in drawings]
    gates_alone = [post(server[0], d, "/api/gates")[1] for d in drawings]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:  # readings and gates, interleaved
        futures = [pool.submit(post, server[0], drawings[k % 4], "/api/gates" if k % 3 == 2 else "/api/read")
                   for k in range(24)]
        answers = [f.result(timeout=TIMEOUT) for f in futures]
    assert all(status == 200 for status, _, _ in answers)
    for k, (_, result, _) in enumerate(answers):
        if k % 3 == 2:
            np.testing.assert_allclose(result["layers"][0]["keep"], gates_alone[k % 4]["layers"][0]["keep"], atol=1e-3)
        else:
            assert result["answer"] == alone[k % 4]["answer"]
            np.testing.assert_allclose(result["steps"], alone[k % 4]["steps"], atol=1e-5)


def test_closing_ends_idle_connections_and_joins_their_threads(server):
    """A request thread alive when Python exits aborts the process (SIGABRT), so closing must not leave one,
    nor wait out the Handler's 30 s timeout for a client that connected and sent nothing."""
    httpd = serve.make_server(server[1])
    serve.serve_in_thread(httpd)
    idle = socket.create_connection(httpd.server_address[:2], timeout=TIMEOUT)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not httpd.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert httpd.connections, "the server never took the connection"
        request_threads = [t for t in threading.enumerate() if "process_request_thread" in t.name]
        assert request_threads and not any(t.daemon for t in request_threads)
        httpd.shutdown()
        closing = threading.Thread(target=httpd.server_close)
        closing.start()
        closing.join(serve.Handler.timeout / 3)
        assert not closing.is_alive(), "server_close waited on the idle client"
        assert not any(t.is_alive() for t in request_threads)
        assert idle.recv(1) == b""  # the server's end is shut
    finally:
        idle.close()


def test_only_loopback_hosts_listen_without_a_warning():
    assert serve.host_warning("127.0.0.1") is None and serve.host_warning("localhost") is None
    assert serve.host_warning("::1") is None
    assert "reachable from other machines, without authentication" in serve.host_warning("0.0.0.0")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_command_serves_and_stops_on_a_signal(tiny_run, signum):
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "serve.py"), tiny_run[1].run_dir, "--port=0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        address = re.fullmatch(rf"Serving {re.escape(tiny_checkpoint(tiny_run))} at (http://127\.0\.0\.1:\d+)/ "
                               rf"\(Ctrl-C to stop\)\n", line)
        assert address, line + process.stderr.read() if process.poll() is not None else line
        with urllib.request.urlopen(address.group(1) + "/", timeout=TIMEOUT) as response:
            assert response.status == 200 and b"<canvas" in response.read()  # read whole: the client did not hang up
        process.send_signal(signum)
        _, err = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == 128 + signum, err
    assert err == f"Interrupted by {signal.Signals(signum).name} while serving: nothing is written, nothing to lose\n"


def test_a_port_in_use_is_one_line(tiny_run, server, capsys):
    port = server[0].rsplit(":", 1)[1]
    assert serve.main([tiny_run[1].run_dir, f"--port={port}"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: cannot listen on 127.0.0.1:{port} (Address already in use); "
                   f"choose another --port or --host\n")
