"""The archiver's /metrics and /health (archiver/metrics_http.h), scraped
with Prometheus' own text parser (prometheus_client.parser) from a real
broker + plugin + archiver while messages flow: the figures move by what
the test did (messages stored, RPC latency by op, errors by op and code,
refused logins by reason from the plugin's figures), the broker's $SYS
figures are there and never reach the archive, /health says 200, then 503
naming a store made read-only and the broker once it is stopped. Also:
404 for other paths, HEAD, 405, loopback by default, bad settings."""
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import harness
from archiver_util import PASSWORD, Archiver, count, inbox, publish_many

WAIT = 30.0             # generous: a busy 2-core machine, maybe sanitized
SENDERS = ["s0", "s1", "s2", "s3"]
PER_SENDER = 500        # 2,000 messages in all


class Stack:
    """Broker (figures every second) + plugin + archiver serving metrics on
    a free loopback port, for the whole module."""

    def __init__(self):
        self.datadir = harness.make_datadir()
        self.store = harness.Store(os.path.join(self.datadir, "auth.db"))
        for name in SENDERS + ["alice", "bob"]:
            self.store.add_user(name)
        self.pw = "svc-" + os.urandom(16).hex()
        self.store.add_user("archiver", password=self.pw, kind="service")
        fd = os.open(os.path.join(self.datadir, "archiver.pw"), os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.pw + "\n")
        self.broker = harness.Broker(self.datadir, plugin_opts={"stats_interval": 1},
                                     extra_conf="sys_interval 1")
        self.port = harness.free_port()
        self.arch = Archiver(self.datadir, self.broker.port, ["--metrics-port", str(self.port)])
        self.clients = []

    def start(self):
        self.broker.start()
        self.arch.start()

    def client(self, name, password=PASSWORD, **kw):
        c = harness.Client(self.broker.port, name, password, **kw)
        self.clients.append(c)
        return c

    def stop(self, failed=False):
        for c in self.clients:
            c.close()
        out = ""
        try:
            self.arch.stop()
        finally:
            if failed:
                out = "---- archiver ----\n%s\n---- broker ----\n%s" % (
                    self.arch.output()[-20000:], self.broker.output()[-8000:])
            self.broker.stop()
        if not failed:
            shutil.rmtree(self.datadir, ignore_errors=True)
        return out

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)


@pytest.fixture(scope="module")
def stack(request):
    yield from harness.serve_stack(request, Stack())


def get(url, method="GET"):
    """(status, headers, body) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def scrape(stack):
    """{(sample name, ((label, value), ...)): value} of one scrape, after
    checking the text: the content type, every family once, every sample
    once and in a family of its own name, histograms cumulative with +Inf
    equal to _count."""
    status, headers, body = get(stack.url("/metrics"))
    assert status == 200, (status, body)
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8", headers
    text = body.decode("utf-8")
    out, types = {}, {}
    for fam in text_string_to_metric_families(text):
        assert fam.type != "unknown", "a sample without its # TYPE: %s" % fam.name
        assert fam.name not in types, "family twice: " + fam.name
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out, "sample twice: %r" % (key,)
            out[key] = s.value
        if fam.type == "histogram":
            check_histogram(fam)
    out["types"] = types
    return out


def check_histogram(fam):
    series = {}
    for s in fam.samples:
        labels = dict(s.labels)
        le = labels.pop("le", None)
        d = series.setdefault(tuple(sorted(labels.items())), {"buckets": []})
        if s.name.endswith("_bucket"):
            d["buckets"].append((float(le), s.value))
        else:
            d[s.name[len(fam.name):]] = s.value
    for key, d in series.items():
        b = d["buckets"]
        assert b and b[-1][0] == float("inf"), (key, b)
        assert [v for _, v in b] == sorted(v for _, v in b), "not cumulative: %r %r" % (key, b)
        assert [le for le, _ in b] == sorted(le for le, _ in b), (key, b)
        assert b[-1][1] == d["_count"], (key, b, d)


def value(fig, name, **labels):
    return fig.get((name, tuple(sorted(labels.items()))), 0)


def health(stack):
    status, headers, body = get(stack.url("/health"))
    assert headers["Content-Type"] == "application/json", headers
    return status, json.loads(body)


def call_rpc(c, user, op, n=1):
    """n requests of op from c (subscribed to its answers); the answers."""
    answers = []
    for i in range(n):
        rid = "r%d-%s" % (i, op)
        c.publish("chat/rpc/%s/req" % user, json.dumps({"id": rid, "op": op, "limit": 5,
                                                        "with": "bob"}))
        deadline = time.monotonic() + WAIT
        while True:
            m = c.get(max(0.1, deadline - time.monotonic()))
            if m.topic.endswith("/resp") and json.loads(m.payload).get("id") == rid:
                answers.append(json.loads(m.payload))
                break
    return answers


# ---- the figures under load ----

def test_figures_move_by_what_was_done_under_load(stack):
    before = scrape(stack)
    senders = []
    for name in SENDERS:
        c = stack.client(name)
        assert c.connect() == 0
        senders.append(c)
    # Scrapes run all through the load: each one must parse.
    stop, scraped, errors = threading.Event(), [], []

    def scraper():
        while not stop.is_set():
            try:
                scraped.append(scrape(stack))
            except Exception as e:     # noqa: BLE001 (reported below)
                errors.append(e)
            stop.wait(0.2)
    t = threading.Thread(target=scraper)
    t.start()
    try:
        threads = [threading.Thread(target=publish_many, args=(c, inbox("alice", c.client_id), PER_SENDER),
                                    kwargs={"prefix": c.client_id})
                   for c in senders]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        sent = len(SENDERS) * PER_SENDER
        stored0 = value(before, "mqchat_archiver_messages_stored_total")
        harness.wait_for(lambda: value(scrape(stack), "mqchat_archiver_messages_stored_total")
                         >= stored0 + sent, WAIT, what="the stored count to move by %d" % sent)
    finally:
        stop.set()
        t.join()
    assert not errors, errors[:3]
    assert len(scraped) >= 2, len(scraped)
    after = scrape(stack)
    assert value(after, "mqchat_archiver_messages_stored_total") - stored0 == sent
    assert count(stack.datadir) == value(after, "mqchat_archiver_messages_stored_total")
    assert value(after, "mqchat_archiver_messages_invalid_total") == 0
    assert value(after, "mqchat_archiver_commits_total") > value(before, "mqchat_archiver_commits_total")
    assert value(after, "mqchat_archiver_pending_messages") == 0
    assert 0 <= value(after, "mqchat_archiver_commit_lag_seconds") < WAIT
    assert value(after, "mqchat_archiver_file_size_bytes", file="archive.db") > 0
    assert value(after, "mqchat_archiver_file_size_bytes", file="auth.db") > 0
    assert value(after, "mqchat_archiver_broker_up") == 1
    assert value(after, "mqchat_archiver_broker_connections") == 1
    for store in ("auth.db", "archive.db", "push.db"):
        assert value(after, "mqchat_archiver_store_write_ok", file=store) == 1
    types = after["types"]
    assert types["mqchat_archiver_messages_stored"] == "counter", types
    assert types["mqchat_archiver_rpc_seconds"] == "histogram", types
    assert types["mqchat_archiver_pending_messages"] == "gauge", types


def test_rpc_latency_and_errors_by_op(stack):
    alice = stack.client("alice")
    assert alice.connect() == 0
    assert alice.subscribe("chat/rpc/alice/resp") in (0, 1)
    before = scrape(stack)
    answers = call_rpc(alice, "alice", "history", 3)
    assert all(a["ok"] for a in answers), answers
    bad = call_rpc(alice, "alice", "no_such_op")
    assert bad[0]["error"] == "unknown_op", bad
    alice.publish("chat/rpc/alice/req", "not json")
    after = scrape(stack)
    # the third: not json, answered with id null; counted as op "none"
    harness.wait_for(lambda: value(scrape(stack), "mqchat_archiver_rpc_errors_total", op="none",
                                   code="bad_request") == value(before, "mqchat_archiver_rpc_errors_total",
                                                                op="none", code="bad_request") + 1,
                     WAIT, what="the bad request counted")
    after = scrape(stack)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert moved("mqchat_archiver_rpc_seconds_count", op="history") == 3
    assert moved("mqchat_archiver_rpc_seconds_bucket", op="history", le="+Inf") == 3
    assert moved("mqchat_archiver_rpc_seconds_sum", op="history") > 0
    assert moved("mqchat_archiver_rpc_seconds_count", op="unknown") == 1
    assert moved("mqchat_archiver_rpc_errors_total", op="unknown", code="unknown_op") == 1
    assert moved("mqchat_archiver_rpc_errors_total", op="history", code="unknown_op") == 0
    # A user's op name never becomes a label.
    assert not [k for k in after if k != "types" and ("op", "no_such_op") in k[1]]


def test_refused_logins_by_reason_from_the_plugin(stack):
    before = scrape(stack)
    for _ in range(2):
        c = harness.Client(stack.broker.port, "bob", "wrong-password-1")
        assert c.connect() != 0
        c.close()
    c = harness.Client(stack.broker.port, "nobody", "wrong-password-1")
    assert c.connect() != 0
    c.close()
    series = ("mqchat_plugin_logins_total", (("reason", "bad_password"), ("result", "refused")))
    unknown = ("mqchat_plugin_logins_total", (("reason", "unknown_user"), ("result", "refused")))

    def moved():
        f = scrape(stack)
        return (f.get(series, 0) - before.get(series, 0) == 2
                and f.get(unknown, 0) - before.get(unknown, 0) == 1) and f
    after = harness.wait_for(moved, WAIT, what="the refused logins in the plugin's figures")
    assert value(after, "mqchat_plugin_up") == 1
    assert after["types"]["mqchat_plugin_logins"] == "counter", after["types"]


def test_broker_figures_from_sys_never_archived(stack):
    def have():
        f = scrape(stack)
        return ("mosquitto_clients_connected", ()) in f and ("mosquitto_uptime_seconds_total", ()) in f and f
    f = harness.wait_for(have, WAIT, what="mosquitto_* figures")
    assert f["types"]["mosquitto_uptime_seconds"] == "counter", f["types"]
    assert f["types"]["mosquitto_messages_received"] == "counter", f["types"]
    assert f["types"]["mosquitto_clients_connected"] == "gauge", f["types"]
    assert f["types"]["mosquitto_load_messages_received_1min"] == "gauge", f["types"]
    # Seconds of $SYS messages went by: none was taken for a chat message.
    assert value(f, "mqchat_archiver_messages_invalid_total") == 0
    assert harness_rows_of(stack, "$SYS") == 0
    assert "invalid message" not in stack.arch.output()


def harness_rows_of(stack, prefix):
    import archiver_util
    return archiver_util.rows(stack.datadir, "SELECT count(*) FROM messages WHERE conv LIKE ?",
                              prefix + "%")[0][0]


# ---- the endpoint itself ----

def test_other_paths_methods_and_head(stack):
    for path in ("/", "/metrics/", "/healthz", "/metrics?x=1/../health", "/../etc/passwd"):
        status, _, body = get(stack.url(path))
        assert status == 404 or (path.startswith("/metrics?") and status == 200), (path, status, body)
    status, headers, body = get(stack.url("/metrics"), method="HEAD")
    assert status == 200 and body == b"", (status, body)
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
    status, headers, body = get(stack.url("/health"), method="HEAD")
    assert status == 200 and body == b"", (status, body)
    status, headers, _ = get(stack.url("/metrics"), method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD", (status, headers)


def test_binds_loopback_by_default(stack):
    hexport = "%04X" % stack.port
    with open("/proc/net/tcp") as f:
        listening = [line.split()[1] for line in f.readlines()[1:]
                     if line.split()[3] == "0A" and line.split()[1].endswith(":" + hexport)]
    assert listening == ["0100007F:" + hexport], listening
    assert "metrics: serving /metrics and /health on http://127.0.0.1:%d/" % stack.port in stack.arch.output()


# ---- health ----

def chattr(flag, path):
    try:
        return subprocess.run(["chattr", flag, path], capture_output=True, timeout=10).returncode == 0
    except OSError:
        return False


def test_health_ok_then_a_store_read_only(stack):
    status, h = health(stack)
    assert status == 200, h
    assert h == {"status": "ok", "broker": "ok",
                 "stores": {"auth.db": "ok", "archive.db": "ok", "push.db": "ok"}}, h
    path = os.path.join(stack.datadir, "archive.db")
    # Root ignores file modes: the immutable flag is what makes a file
    # read-only for root too (checked when a file is opened, so the
    # archiver's own open connections go on writing, as they should).
    if not chattr("+i", path):
        pytest.skip("cannot make archive.db immutable here (chattr +i)")
    try:
        status, h = health(stack)
        assert status == 503, h
        assert h["status"] == "fail" and h["broker"] == "ok", h
        assert h["stores"]["archive.db"].startswith("not writable"), h
        assert h["stores"]["auth.db"] == "ok" and h["stores"]["push.db"] == "ok", h
        # Storing goes on meanwhile: nothing is lost for a health check.
        c = stack.client("bob")
        assert c.connect() == 0
        n = count(stack.datadir)
        publish_many(c, inbox("alice", "bob"), 20, prefix="ro")
        harness.wait_for(lambda: count(stack.datadir) >= n + 20, WAIT, what="messages stored")
    finally:
        chattr("-i", path)
    status, h = health(stack)
    assert status == 200, h


def test_health_503_names_the_broker_when_it_stops(stack):
    # Last of the module: the broker comes back at the end.
    stack.broker.stop()
    try:
        def down():
            status, h = health(stack)
            return status == 503 and h
        h = harness.wait_for(down, WAIT, what="/health to say 503")
        assert h["broker"] == "not connected" and h["status"] == "fail", h
        assert h["stores"] == {"auth.db": "ok", "archive.db": "ok", "push.db": "ok"}, h
        f = scrape(stack)
        assert value(f, "mqchat_archiver_broker_up") == 0
        # No stale broker figures while it is away.
        assert ("mosquitto_clients_connected", ()) not in f
    finally:
        stack.broker.start()
    harness.wait_for(lambda: health(stack)[0] == 200, WAIT, what="/health to say 200 again")


# ---- settings ----

def run_fails(datadir, *args):
    r = subprocess.run([harness.ARCHIVER, "--data", datadir, "run"] + list(args),
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stderr


def test_bad_metrics_settings(stack, tmp_path):
    rc, err = run_fails(str(tmp_path), "--metrics-port", "65536")
    assert rc == 2 and 'invalid value "65536" for metrics_port' in err, (rc, err)
    rc, err = run_fails(str(tmp_path), "--metrics-port", "x")
    assert rc == 2 and 'invalid value "x" for metrics_port' in err, (rc, err)
    conf = tmp_path / "a.conf"
    conf.write_text("metrics_bind =\n")
    rc, err = run_fails(str(tmp_path), "-c", str(conf))
    assert rc == 2 and "invalid value" in err and "metrics_bind" in err, (rc, err)


def test_metrics_port_taken_or_bad_address_stops_the_start(stack):
    # The module's own archiver holds its port: a second daemon on another
    # data folder cannot have it.
    other = harness.make_datadir()
    store = harness.Store(os.path.join(other, "auth.db"))
    store.add_user("archiver", password="svc-password-1234", kind="service")
    fd = os.open(os.path.join(other, "archiver.pw"), os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("svc-password-1234\n")
    try:
        rc, err = run_fails(other, "--port", str(stack.broker.port), "--metrics-port", str(stack.port))
        assert rc == 1, (rc, err)
        assert "metrics: cannot listen on 127.0.0.1:%d" % stack.port in err, err
        assert "choose another metrics_port" in err, err
        rc, err = run_fails(other, "--port", str(stack.broker.port), "--metrics-port",
                            str(harness.free_port()), "--metrics-bind", "localhost")
        assert rc == 1 and 'metrics_bind "localhost" is not an IP address' in err, (rc, err)
    finally:
        shutil.rmtree(other, ignore_errors=True)
