"""``caffelite download_model_binary`` against a local HTTP server on 127.0.0.1."""
import hashlib
import http.server
import os
import threading

import pytest

import caffelite.cli.download_model as dm
from caffelite.cli.main import main
from caffelite.errors import CaffeliteError

PAYLOAD = bytes(range(256)) * 1200          # 300 KiB of weights
SHA1 = hashlib.sha1(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /model.caffemodel; honours Range unless told not to, and can drop
    the connection halfway through the next N responses."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        state = self.server.state
        state["requests"].append(self.headers.get("Range"))
        if self.path != "/model.caffemodel":
            self.send_error(404)
            return
        body, start = state["payload"], 0
        rng = self.headers.get("Range")
        if rng and state["ranges"]:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        rest = body[start:]
        self.send_header("Content-Length", str(len(rest)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if state["drops"] > 0:
            state["drops"] -= 1
            self.wfile.write(rest[:len(rest) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)     # the client sees the body end early
            return
        self.wfile.write(rest)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.state = dict(payload=PAYLOAD, ranges=True, drops=0, requests=[])
    thread = threading.Thread(target=httpd.serve_forever, kwargs=dict(poll_interval=0.02),
                              daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def model_dir(tmp_path, server, sha1=SHA1, drop_key=None, url=None):
    d = tmp_path / "mymodel"
    d.mkdir(exist_ok=True)
    front = {"name": "Test Model", "caffemodel": "test.caffemodel",
             "caffemodel_url": url or f"http://127.0.0.1:{server.server_port}/model.caffemodel",
             "license": "unrestricted", "sha1": sha1, "caffe_commit": "unknown"}
    if drop_key:
        del front[drop_key]
    text = "---\n" + "".join(f"{k}: {v}\n" for k, v in front.items()) + "---\n\nA model.\n"
    (d / "readme.md").write_text(text)
    return d


def test_front_matter_parser(tmp_path):
    readme = tmp_path / "readme.md"
    readme.write_text('---\nname: "Net: the one"\n# a comment\n\ncaffemodel_url: '
                      'http://x.org/a.caffemodel\nsha1: abc # trailing\n---\nbody: not read\n')
    assert dm.parse_front_matter(str(readme)) == {
        "name": "Net: the one", "caffemodel_url": "http://x.org/a.caffemodel", "sha1": "abc"}
    readme.write_text("no front matter here\n")
    with pytest.raises(CaffeliteError, match="no YAML front matter"):
        dm.parse_front_matter(str(readme))


def test_download_success(tmp_path, server, capfd):
    d = model_dir(tmp_path, server)
    assert main(["download_model_binary", str(d)]) == 0
    assert (d / "test.caffemodel").read_bytes() == PAYLOAD
    assert not (d / "test.caffemodel.part").exists()
    err = capfd.readouterr().err
    assert "100.0%" in err and "ETA" in err and "/s" in err      # the progress bar
    # a second run finds the verified file and does not download again
    requests = len(server.state["requests"])
    assert main(["download_model_binary", str(d)]) == 0
    assert len(server.state["requests"]) == requests
    assert "Model already exists" in capfd.readouterr().err


def test_interrupted_download_resumes_with_range(tmp_path, server, capfd):
    d = model_dir(tmp_path, server)
    server.state["drops"] = 1
    assert main(["download_model_binary", str(d), "--retries", "0"]) == 1
    part = d / "test.caffemodel.part"
    assert not (d / "test.caffemodel").exists()
    assert 0 < part.stat().st_size < len(PAYLOAD)
    assert "run the command again to resume" in capfd.readouterr().err
    half = part.stat().st_size
    assert main(["download_model_binary", str(d)]) == 0
    assert server.state["requests"][-1] == f"bytes={half}-"
    assert (d / "test.caffemodel").read_bytes() == PAYLOAD
    assert not part.exists()


def test_retries_resume_within_one_run(tmp_path, server):
    d = model_dir(tmp_path, server)
    server.state["drops"] = 2
    assert main(["download_model_binary", str(d)]) == 0
    assert (d / "test.caffemodel").read_bytes() == PAYLOAD
    reqs = server.state["requests"]
    assert reqs[0] is None and all(r and r.startswith("bytes=") for r in reqs[1:])
    assert len(reqs) == 3


def test_server_without_range_support_restarts(tmp_path, server):
    d = model_dir(tmp_path, server)
    (d / "test.caffemodel.part").write_bytes(b"stale bytes from an older download")
    server.state["ranges"] = False
    assert main(["download_model_binary", str(d)]) == 0
    assert server.state["requests"] == ["bytes=34-"]
    assert (d / "test.caffemodel").read_bytes() == PAYLOAD


def test_complete_part_file_is_verified_after_416(tmp_path, server):
    d = model_dir(tmp_path, server)
    (d / "test.caffemodel.part").write_bytes(PAYLOAD)
    assert main(["download_model_binary", str(d)]) == 0
    assert (d / "test.caffemodel").read_bytes() == PAYLOAD


def test_sha1_mismatch_leaves_no_final_file(tmp_path, server, capfd):
    wrong = "0" * 40
    d = model_dir(tmp_path, server, sha1=wrong)
    assert main(["download_model_binary", str(d)]) == 1
    assert not (d / "test.caffemodel").exists()
    assert not (d / "test.caffemodel.part").exists()
    err = capfd.readouterr().err
    assert f"expected {wrong}, got {SHA1}" in err


def test_corrupt_existing_file_is_replaced_only_when_verified(tmp_path, server, capfd):
    d = model_dir(tmp_path, server)
    (d / "test.caffemodel").write_bytes(b"corrupt")
    assert main(["download_model_binary", str(d)]) == 0
    assert (d / "test.caffemodel").read_bytes() == PAYLOAD
    assert "downloading it again" in capfd.readouterr().err


def test_unknown_sha1_downloads_with_a_warning(tmp_path, server, capfd):
    d = model_dir(tmp_path, server, sha1="unknown")
    assert main(["download_model_binary", str(d)]) == 0
    assert (d / "test.caffemodel").read_bytes() == PAYLOAD
    assert "cannot be verified" in capfd.readouterr().err


@pytest.mark.parametrize("key", ["caffemodel", "caffemodel_url", "sha1"])
def test_missing_keys_are_named(tmp_path, server, capfd, key):
    d = model_dir(tmp_path, server, drop_key=key)
    assert main(["download_model_binary", str(d)]) == 1
    err = capfd.readouterr().err
    assert os.path.join(str(d), "readme.md") in err and f"lacks '{key}'" in err
    assert server.state["requests"] == []


def test_bad_inputs(tmp_path, server, capfd):
    assert main(["download_model_binary", str(tmp_path / "nope")]) == 1
    assert "not a directory" in capfd.readouterr().err
    d = model_dir(tmp_path, server, url="none (train it yourself)")
    assert main(["download_model_binary", str(d)]) == 1
    assert "caffemodel_url is not a URL" in capfd.readouterr().err
    d = model_dir(tmp_path, server,
                  url=f"http://127.0.0.1:{server.server_port}/missing.caffemodel")
    assert main(["download_model_binary", str(d)]) == 1
    assert "HTTP error 404" in capfd.readouterr().err
    assert not (d / "test.caffemodel").exists()


def test_repository_readmes_have_the_required_keys():
    models = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "models")
    for name in sorted(os.listdir(models)):
        readme = os.path.join(models, name, "readme.md")
        if os.path.exists(readme):
            front = dm.parse_front_matter(readme)
            assert all(front.get(k) for k in dm.REQUIRED_KEYS), readme
