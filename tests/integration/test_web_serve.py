"""test_web_serve.py - the archiver's HTTP server for the web app
(archiver/http.c, `run --http-port --web-dir --web-mqtt-url`).

A real broker and archiver; the archiver serves a folder the test fills
(not the real app, so every case is known), and one test serves
BUILD/web when make web has built it. Requests go through http.client,
or a raw socket for what http.client refuses to send (a NUL, a header
past the bound)."""
import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import time

import pytest

import harness
from archiver_util import arch_env  # noqa: F401 (fixture)

WS_URL = "ws://127.0.0.1:18080"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
       " connect-src 'self' %s; worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none';"
       " frame-ancestors 'none'")

INDEX = b"<!doctype html>\n<html><head><script type=\"module\" src=\"js/app.js\"></script>" \
        b"<link rel=\"stylesheet\" href=\"style.css\"></head><body>hi</body></html>\n"
APP_JS = b"import {x} from './util.js';\nexport const y = x + 1; // " + b"padding " * 200 + b"\n"
UTIL_JS = b"export const x = 1;\n"
STYLE = b"body { color: #222; }\n" * 30
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
SVG = b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n"

TYPES = {
    "/": "text/html; charset=utf-8",
    "/index.html": "text/html; charset=utf-8",
    "/js/app.js": "text/javascript; charset=utf-8",
    "/js/util.js": "text/javascript; charset=utf-8",
    "/style.css": "text/css; charset=utf-8",
    "/config.json": "application/json",
    "/data.json": "application/json",
    "/logo.png": "image/png",
    "/icon.svg": "image/svg+xml",
    "/notes.bin": "application/octet-stream",
}


def write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def gz_beside(path):
    """A .gz twin as make web writes it (gzip -9 -n), after the file."""
    with open(path, "rb") as f:
        data = f.read()
    write(path + ".gz", gzip.compress(data, 9, mtime=0))


def make_web(root):
    """A web folder with a known set of files, and traps around them."""
    web = os.path.join(root, "web")
    write(os.path.join(web, "index.html"), INDEX)
    write(os.path.join(web, "js", "app.js"), APP_JS)
    write(os.path.join(web, "js", "util.js"), UTIL_JS)
    write(os.path.join(web, "style.css"), STYLE)
    write(os.path.join(web, "data.json"), b'{"a":1}\n')
    write(os.path.join(web, "logo.png"), PNG)
    write(os.path.join(web, "icon.svg"), SVG)
    write(os.path.join(web, "notes.bin"), b"\x00\x01\x02")
    for p in ("index.html", "js/app.js", "style.css"):
        gz_beside(os.path.join(web, p))
    # Not served: deeper than one level, hidden, a link, a name that needs
    # escaping, a config.json of the folder's own (the generated one wins).
    write(os.path.join(web, "js", "deep", "x.js"), b"deep\n")
    write(os.path.join(web, ".secret"), b"hidden\n")
    write(os.path.join(web, "js", ".env"), b"hidden\n")
    os.symlink("/etc/passwd", os.path.join(web, "passwd.txt"))
    os.symlink("/etc", os.path.join(web, "etc"))
    write(os.path.join(web, "a b.txt"), b"space\n")
    write(os.path.join(web, "config.json"), b'{"mqtt_url":"ws://evil.example"}\n')
    return web


def request(port, path, method="GET", headers=None, body=None):
    """One request on a new connection: (status, {lower-case header: value}, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def raw(port, data, timeout=10):
    """Send bytes as they are; return what comes back until the server
    closes or is silent for a moment."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass   # the server answered and closed before reading it all
        out = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
                if b"\r\n\r\n" in out:
                    s.settimeout(0.5)
        except (socket.timeout, ConnectionResetError):
            pass
        return out


def status_of(reply):
    line = reply.split(b"\r\n", 1)[0]
    return int(line.split()[1]) if line.startswith(b"HTTP/") else None


def start_web(arch_env, web, url=WS_URL, extra=()):  # noqa: F811
    """Broker + archiver serving web on a free port; returns (env, port)."""
    port = harness.free_port()
    args = ["--http-port", str(port), "--web-dir", web] + (["--web-mqtt-url", url] if url else [])
    env = arch_env(args=args + list(extra))
    env.arch.wait_log("http: serving %s on http://127.0.0.1:%d/" % (web, port))
    return env, port


def start_failing(arch_env, args):  # noqa: F811
    """An archiver that must refuse to start: (exit status, its log)."""
    env = arch_env(args=args, start=False)
    env.arch.start(wait=False)
    try:
        rc = env.arch.proc.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError("the archiver kept running:\n" + env.arch.output())
    return rc, env.arch.output()


@pytest.fixture
def served(arch_env, datadir):  # noqa: F811
    web = make_web(datadir)
    env, port = start_web(arch_env, web)
    return env, port, web


def test_each_file_has_its_exact_content_type(served):
    env, port, web = served
    for path, ctype in TYPES.items():
        status, h, body = request(port, path)
        assert status == 200, (path, status)
        assert h["content-type"] == ctype, (path, h)
        assert int(h["content-length"]) == len(body)
    assert request(port, "/")[2] == INDEX
    assert request(port, "/js/util.js")[2] == UTIL_JS
    assert request(port, "/logo.png")[2] == PNG


def test_gzip_only_when_the_request_accepts_it(served):
    env, port, web = served
    plain = request(port, "/js/app.js")
    assert "content-encoding" not in plain[1] and plain[2] == APP_JS
    assert plain[1]["vary"] == "Accept-Encoding"
    cases = {
        "gzip": True, "GZIP": True, "x-gzip": True, "deflate, gzip": True,
        "gzip;q=0.5, br": True, "gzip; q=1": True, "*": True, "br;q=1, *;q=0.1": True,
        "gzip;q=0": False, "gzip;q=0.0": False, "gzip; q=0.000": False, "gzip;Q=0": False,
        "*;q=0": False, "*, gzip;q=0": False, "identity": False, "br, deflate": False,
        "": False, "gzipx": False, "gzip;q=x": False,
    }
    for ae, want in cases.items():
        status, h, body = request(port, "/js/app.js", headers={"Accept-Encoding": ae})
        assert status == 200
        assert h["content-type"] == "text/javascript; charset=utf-8"
        assert h["vary"] == "Accept-Encoding"
        if want:
            assert h.get("content-encoding") == "gzip", ae
            assert len(body) < len(APP_JS) and gzip.decompress(body) == APP_JS, ae
        else:
            assert "content-encoding" not in h and body == APP_JS, ae
    # A file without a twin is sent as it is, whatever is accepted.
    status, h, body = request(port, "/js/util.js", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in h and "vary" not in h and body == UTIL_JS
    for path, data in (("/", INDEX), ("/style.css", STYLE)):
        status, h, body = request(port, path, headers={"Accept-Encoding": "gzip, deflate"})
        assert h["content-encoding"] == "gzip" and gzip.decompress(body) == data


def test_stale_gzip_twin_is_not_sent(arch_env, datadir):  # noqa: F811
    web = make_web(datadir)
    # The file changed after its .gz was made: the twin is older.
    p = os.path.join(web, "style.css")
    write(p, STYLE + b"p { margin: 0; }\n")
    old = os.stat(p).st_mtime - 10
    os.utime(p + ".gz", (old, old))
    env, port = start_web(arch_env, web)
    status, h, body = request(port, "/style.css", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in h and body == STYLE + b"p { margin: 0; }\n"
    assert "style.css.gz is older than style.css" in env.arch.output()


def test_etag_gives_304(served):
    env, port, web = served
    status, h, body = request(port, "/js/app.js")
    etag = h["etag"]
    assert etag.startswith('"') and etag.endswith('"') and h["cache-control"] == "no-cache"
    status, hz, _ = request(port, "/js/app.js", headers={"Accept-Encoding": "gzip"})
    assert hz["etag"] != etag, "each encoding is its own representation"
    for inm in (etag, "W/" + etag, '"nope", ' + etag, "*"):
        status, h2, body = request(port, "/js/app.js", headers={"If-None-Match": inm})
        assert status == 304 and body == b"", inm
        assert h2["etag"] == etag and h2["cache-control"] == "no-cache"
    for inm in ('"nope"', etag[:-2] + '"', hz["etag"]):
        assert request(port, "/js/app.js", headers={"If-None-Match": inm})[0] == 200, inm
    # The gzip twin's tag matches only a gzip request.
    status, _, _ = request(port, "/js/app.js", headers={"If-None-Match": hz["etag"],
                                                        "Accept-Encoding": "gzip"})
    assert status == 304
    # config.json too.
    _, hc, _ = request(port, "/config.json")
    assert request(port, "/config.json", headers={"If-None-Match": hc["etag"]})[0] == 304


def test_head_has_the_headers_and_no_body(served):
    env, port, web = served
    _, get_h, get_body = request(port, "/style.css")
    status, h, body = request(port, "/style.css", method="HEAD")
    assert status == 200 and body == b""
    assert h["content-length"] == str(len(get_body))
    for k in ("content-type", "etag", "cache-control", "content-security-policy"):
        assert h[k] == get_h[k], k


def test_other_methods_get_405(served):
    env, port, web = served
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"):
        status, h, body = request(port, "/index.html", method=method, body=b"x=1")
        assert status == 405, method
        assert h["allow"] == "GET, HEAD"
        assert h["content-security-policy"] == CSP % WS_URL
    # A large body is not read (the answer comes before it, and the
    # connection closes), and the server goes on answering.
    reply = raw(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (4 << 20)
                + b"x" * 65536)
    assert status_of(reply) == 405, reply[:200]
    assert request(port, "/")[0] == 200


def test_unknown_paths_and_traversal_get_404(served):
    env, port, web = served
    for path in ("/nope", "/index.htm", "/js/", "/js", "/index.html/", "/./index.html",
                 "/js/../index.html", "/../etc/passwd", "/../../../../etc/passwd",
                 "/%2e%2e/etc/passwd", "/js/%2e%2e/index.html", "/%2E%2E/%2E%2E/etc/passwd",
                 "/..%2fetc%2fpasswd", "//etc/passwd", "/etc/passwd", "/etc/hostname",
                 "/passwd.txt", "/js/deep/x.js", "/.secret", "/js/.env", "/a%20b.txt",
                 "/js/app.js.gz", "/index.html%00.js", "/index.html%00", "/..\\..\\etc\\passwd",
                 "/%5c..%5cetc%5cpasswd", "/" + "a" * 3000):
        status, h, body = request(port, path)
        assert status == 404, (path, status)
        assert b"root:" not in body
        assert h["content-type"] == "text/plain; charset=utf-8"
        assert h["content-security-policy"] == CSP % WS_URL
        assert h["x-content-type-options"] == "nosniff"
    # A query string does not change which file is served.
    assert request(port, "/index.html?x=../../etc/passwd")[2] == INDEX
    # What http.client refuses to send: a NUL and a space in the path. A
    # raw NUL ends the path (libmicrohttpd reads it as a C string): what
    # is before it must name a loaded file, and that file is all it gets.
    for line in (b"GET /../etc/passwd\x00 HTTP/1.1", b"GET /etc/passwd\x00/index.html HTTP/1.1",
                 b"GET /nope\x00/../index.html HTTP/1.1", b"GET /a b.txt HTTP/1.1"):
        reply = raw(port, line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status_of(reply) in (None, 400, 404), (line, reply[:200])
        assert b"root:" not in reply
    reply = raw(port, b"GET /index.html\x00/../../etc/passwd HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\n\r\n")
    assert status_of(reply) == 200 and reply.endswith(b"\r\n\r\n" + INDEX), reply[:300]
    assert request(port, "/")[0] == 200


def test_every_answer_has_the_security_headers(served):
    env, port, web = served
    for path, method in (("/", "GET"), ("/js/app.js", "GET"), ("/config.json", "GET"),
                         ("/nope", "GET"), ("/", "POST"), ("/style.css", "HEAD")):
        status, h, _ = request(port, path, method=method)
        csp = h["content-security-policy"]
        assert csp == CSP % WS_URL, csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
        assert h["cache-control"] == ("no-cache" if status in (200, 304) else "no-store")


def test_config_json_is_made_from_the_mqtt_url(served):
    env, port, web = served
    status, h, body = request(port, "/config.json")
    assert status == 200 and h["content-type"] == "application/json"
    assert json.loads(body) == {"mqtt_url": WS_URL}
    assert "the folder's config.json is not served" in env.arch.output()


def test_a_host_placeholder_opens_connect_src_to_websockets(arch_env, datadir):  # noqa: F811
    web = make_web(datadir)
    env, port = start_web(arch_env, web, url="wss://{host}/mqtt")
    status, h, body = request(port, "/config.json")
    assert json.loads(body) == {"mqtt_url": "wss://{host}/mqtt"}
    assert h["content-security-policy"] == CSP % "ws: wss:"


def test_the_default_mqtt_url(arch_env, datadir):  # noqa: F811
    web = make_web(datadir)
    env, port = start_web(arch_env, web, url=None)
    assert json.loads(request(port, "/config.json")[2]) == {"mqtt_url": "ws://{host}:8080"}


def test_connections_are_kept_alive(served):
    env, port, web = served
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/")
        r = c.getresponse()
        assert r.read() == INDEX
        sock = c.sock
        for path in ("/js/app.js", "/style.css", "/nope", "/config.json"):
            c.request("GET", path)
            c.getresponse().read()
        assert c.sock is sock, "one connection for every request"
    finally:
        c.close()


def test_request_headers_are_bounded(served):
    env, port, web = served
    reply = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 * 1024) + b"\r\n\r\n")
    assert status_of(reply) != 200, reply[:200]
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
    reply = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert status_of(reply) != 200, reply[:200]
    assert request(port, "/")[0] == 200


def test_settings_from_the_config_file(arch_env, datadir):  # noqa: F811
    web = make_web(datadir)
    port = harness.free_port()
    conf = os.path.join(datadir, "archiver.conf")
    with open(conf, "w") as f:
        f.write("http_port = %d\nhttp_bind = 127.0.0.1\nweb_dir = %s\nweb_mqtt_url = %s\n"
                % (port, web, WS_URL))
    env = arch_env(args=["-c", conf])
    env.arch.wait_log("http: serving %s on http://127.0.0.1:%d/" % (web, port))
    assert json.loads(request(port, "/config.json")[2]) == {"mqtt_url": WS_URL}


def test_stops_with_the_archiver(served):
    env, port, web = served
    assert request(port, "/")[0] == 200
    assert env.arch.stop() == 0
    assert "stopped:" in env.arch.output()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_no_http_port_no_server(arch_env):  # noqa: F811
    env = arch_env()
    assert "http:" not in env.arch.output()


# ---- refusals at start ----

def test_refuses_a_missing_web_dir(arch_env, datadir):  # noqa: F811
    missing = os.path.join(datadir, "no-such-web")
    rc, out = start_failing(arch_env, ["--http-port", str(harness.free_port()), "--web-dir", missing])
    assert rc == 1, out
    assert "http: web_dir %s: No such file or directory" % missing in out, out
    assert "archiving" not in out


def test_refuses_a_web_dir_that_is_a_file(arch_env, datadir):  # noqa: F811
    f = os.path.join(datadir, "file")
    write(f, b"x")
    rc, out = start_failing(arch_env, ["--http-port", str(harness.free_port()), "--web-dir", f])
    assert rc == 1 and "http: web_dir %s: Not a directory" % f in out, out


def test_refuses_http_port_without_web_dir(arch_env):  # noqa: F811
    rc, out = start_failing(arch_env, ["--http-port", str(harness.free_port())])
    assert rc == 1 and "needs web_dir" in out, out


def test_refuses_a_file_too_big(arch_env, datadir):  # noqa: F811
    web = make_web(datadir)
    with open(os.path.join(web, "huge.js"), "wb") as f:
        f.truncate(9 * 1024 * 1024)
    rc, out = start_failing(arch_env, ["--http-port", str(harness.free_port()), "--web-dir", web])
    assert rc == 1 and "huge.js: file too big" in out, out


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_refuses_an_unreadable_file(arch_env, datadir):  # noqa: F811
    web = make_web(datadir)
    os.chmod(os.path.join(web, "style.css"), 0)
    rc, out = start_failing(arch_env, ["--http-port", str(harness.free_port()), "--web-dir", web])
    assert rc == 1 and "style.css: Permission denied" in out, out


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "ws://", "ws://a b",
                                 "ws://x;script-src *", "ws://x'", "wss://x,y", "127.0.0.1:8080"])
def test_refuses_a_bad_mqtt_url(arch_env, datadir, url):  # noqa: F811
    web = make_web(datadir)
    rc, out = start_failing(arch_env, ["--http-port", str(harness.free_port()), "--web-dir", web,
                                       "--web-mqtt-url", url])
    assert rc == 1 and "is not a ws:// or wss:// URL" in out, out


@pytest.mark.parametrize("port", ["-1", "65536", "x"])
def test_refuses_a_bad_http_port(arch_env, port):  # noqa: F811
    rc, out = start_failing(arch_env, ["--http-port", port, "--web-dir", "/tmp"])
    assert rc == 2 and 'invalid value "%s" for http_port' % port in out, out


def test_refuses_a_taken_port(arch_env, datadir):  # noqa: F811
    web = make_web(datadir)
    with harness.port_in_use() as port:
        rc, out = start_failing(arch_env, ["--http-port", str(port), "--web-dir", web])
    assert rc == 1, out
    assert "http: cannot listen on 127.0.0.1:%d: Address already in use" % port in out, out


def test_refuses_a_bind_that_is_not_an_address(arch_env, datadir):  # noqa: F811
    web = make_web(datadir)
    rc, out = start_failing(arch_env, ["--http-port", str(harness.free_port()), "--web-dir", web,
                                       "--http-bind", "localhost"])
    assert rc == 1 and 'http_bind "localhost" is not an IP address' in out, out


# ---- the real app ----

BUILT = os.path.join(harness.BUILD, "web")


@pytest.mark.skipif(not os.path.exists(os.path.join(BUILT, "index.html")),
                    reason="make web has not built BUILD/web/index.html")
def test_serves_the_built_web_app(arch_env):  # noqa: F811
    env, port = start_web(arch_env, BUILT)
    status, h, index = request(port, "/")
    assert status == 200 and h["content-type"] == "text/html; charset=utf-8"
    # Every file of the build, each with its type, and its gzip twin the
    # same bytes once unpacked.
    served = 0
    for dirpath, _, names in os.walk(BUILT):
        for name in names:
            if name.endswith(".gz"):
                continue
            path = os.path.join(dirpath, name)
            url = "/" + os.path.relpath(path, BUILT)
            with open(path, "rb") as f:
                data = f.read()
            status, h, body = request(port, url)
            assert status == 200 and body == data, url
            if name.endswith(".js"):
                assert h["content-type"] == "text/javascript; charset=utf-8", url
            elif name.endswith(".css"):
                assert h["content-type"] == "text/css; charset=utf-8", url
            if os.path.exists(path + ".gz"):
                status, h, body = request(port, url, headers={"Accept-Encoding": "gzip"})
                assert h["content-encoding"] == "gzip" and gzip.decompress(body) == data, url
            served += 1
    assert served >= 2
    # MQTT.js is there, and the first visit's bytes (gzip) stay small.
    status, h, body = request(port, "/vendor/mqtt.esm.js", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and h["content-encoding"] == "gzip"
    assert b"export" in gzip.decompress(body)
    assert json.loads(request(port, "/config.json")[2]) == {"mqtt_url": WS_URL}
    assert env.arch.stop() == 0


def test_sigterm_during_requests_stops_cleanly(served):
    env, port, web = served
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/")
    c.getresponse().read()
    # An idle keep-alive connection is open while the archiver stops.
    t0 = time.monotonic()
    assert env.arch.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 5
    c.close()
