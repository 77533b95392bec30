"""Downloading missing MNIST files, against a server the test runs on 127.0.0.1."""
import gzip
import http.server
import os
import shutil
import threading

import pytest
from helpers import MNIST_DIR

import data

NAME = data.TEST_LABELS  # the smallest of the four files


GOOD = open(os.path.join(MNIST_DIR, NAME + ".gz"), "rb").read()


GOOD_RAW = gzip.decompress(GOOD)


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves `routes[path] = (status, body, cut)`; `cut` drops the connection mid-file."""
    routes = {}
    requested = []

    def do_GET(self):
        self.requested.append(self.path)
        status, body, cut = self.routes.get(self.path, (404, b"<html>not found</html>", False))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2] if cut else body)
        self.wfile.flush()
        if cut:
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.routes, Handler.requested = {}, []
    yield Handler.routes, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder):
    return sorted(os.listdir(folder))


def test_good_file_lands(server, tmp_path):
    routes, base = server
    routes[f"/a/{NAME}.gz"] = (200, GOOD, False)
    path = data.download(NAME, str(tmp_path), urls=[base + "/a/"])
    assert open(path, "rb").read() == GOOD
    assert leftovers(tmp_path) == [NAME + ".gz"]


def test_next_mirror_is_tried_after_a_failure(server, tmp_path):
    routes, base = server
    routes[f"/good/{NAME}.gz"] = (200, GOOD, False)
    path = data.download(NAME, str(tmp_path), urls=[base + "/missing/", base + "/good/"])
    assert open(path, "rb").read() == GOOD


@pytest.mark.parametrize("body,cut", [(GOOD[:-200] + bytes(200), False), (GOOD, True),
                                      (b"<html>rate limited</html>", False)],
                         ids=["corrupt", "dropped-mid-file", "html-page"])
def test_bad_download_leaves_nothing_and_says_why(server, tmp_path, body, cut):
    routes, base = server
    routes[f"/m/{NAME}.gz"] = (200, body, cut)
    with pytest.raises(data.DataError) as err:
        data.download(NAME, str(tmp_path), urls=[base + "/m/"])
    message = str(err.value)
    assert NAME in message and str(tmp_path) in message and "copy the four MNIST files" in message
    assert leftovers(tmp_path) == []


def test_read_data_sets_fetches_a_missing_file(server, tmp_path):
    routes, base = server
    routes[f"/m/{NAME}.gz"] = (200, GOOD, False)
    for name in (data.TRAIN_IMAGES, data.TRAIN_LABELS, data.TEST_IMAGES):
        shutil.copy(os.path.join(MNIST_DIR, name + ".gz"), tmp_path)
    mnist = data.read_data_sets(str(tmp_path), source_url=base + "/m/", mirrors=())
    assert list(mnist.test.labels[:5]) == [7, 2, 1, 0, 4]
    assert (tmp_path / (NAME + ".gz")).exists()


def test_source_url_is_tried_before_the_mirrors(server, tmp_path):
    routes, base = server
    routes[f"/mirror/{NAME}.gz"] = (200, GOOD, False)
    for name in (data.TRAIN_IMAGES, data.TRAIN_LABELS, data.TEST_IMAGES):
        shutil.copy(os.path.join(MNIST_DIR, name + ".gz"), tmp_path)
    data.read_data_sets(str(tmp_path), source_url=base + "/source/", mirrors=(base + "/mirror/",))
    assert Handler.requested == [f"/source/{NAME}.gz", f"/mirror/{NAME}.gz"]


def test_a_file_not_mnists_is_not_kept_from_a_download(server, tmp_path):
    routes, base = server
    other = gzip.compress(GOOD_RAW[:8] + bytes(len(GOOD_RAW) - 8))  # valid IDX, all labels 0: not MNIST's
    routes[f"/m/{NAME}.gz"] = (200, other, False)
    with pytest.raises(data.DataError, match="sha256 mismatch"):
        data.download(NAME, str(tmp_path), urls=[base + "/m/"])
    assert leftovers(tmp_path) == []


def test_unreachable_mirrors_name_the_file_and_folder_and_create_nothing(tmp_path):
    missing = tmp_path / "misspelt" / "mnist"
    with pytest.raises(data.DataError) as err:
        data.read_data_sets(str(missing), source_url="http://127.0.0.1:9/", mirrors=())
    assert data.TRAIN_IMAGES in str(err.value) and str(missing) in str(err.value)
    assert leftovers(tmp_path) == []  # no folder tree for a download that never happened


def test_a_read_only_data_folder_is_one_error_and_leaves_nothing(server, tmp_path, monkeypatch):
    routes, base = server
    routes[f"/m/{NAME}.gz"] = (200, GOOD, False)

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    # Root can write anywhere, so the errno is simulated, at the rename: the temporary file must go too.
    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(data.DataError, match=f"{tmp_path}: cannot save the downloaded {NAME}.gz there "
                                             r"\(Permission denied\)"):
        data.download(NAME, str(tmp_path), urls=[base + "/m/"])
    assert leftovers(tmp_path) == []
