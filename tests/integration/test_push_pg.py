"""test_push_pg.py - the archiver's push thread on a push store in PostgreSQL.

A data folder whose store.conf says `store postgresql` keeps its user store
(schema `auth`) and its push store (schema `push`) in that database
(archiver/README.md, "The push store on PostgreSQL"); the archive is still
archive.db. A real broker with the plugin and the daemon on it, the
webhook fake of push_fakes.py as the provider: a target registered over
RPC lands in push.targets, a text to its person while away is notified,
signed, once; the job leaves push.queue, the shared cursor in push.meta
reaches the archive's seq, and the target's last_ok is written. A job
another node's push thread took and never finished (its taker gone) is
sent by this one once its lease is over. /health asks the server for the
push store (a primary, schema `push` there).

The server is the test's own (tests/unit/pg_cluster.sh); the module is
skipped, saying why, when PostgreSQL 15 is not installed."""
import json
import os
import shutil
import time
import urllib.error
import urllib.request
import uuid

import pytest

import harness
from archiver_util import Archiver, Rpc, inbox, read_db, rpc_ok
from cli_util import add_user, ok
from pg_util import pg_server, psql, write_store_conf
from push_fakes import WebhookFake

PASSWORD = "correct-horse"
T = 20            # seconds a notification may take on a busy machine
LEASE_MS = 30000  # PUSH_STORE_LEASE_MS (archiver/push_store.h)


class Node:
    def __init__(self, server, request):
        self.server, self.db = server, "push%d" % os.getpid()
        psql(server, "postgres", "DROP DATABASE IF EXISTS %s" % self.db)
        psql(server, "postgres", "CREATE DATABASE %s" % self.db)
        self.datadir = harness.make_datadir()
        write_store_conf(self.datadir, server, self.db)
        ok(self.datadir, "init")
        for u in ("alice", "bob", "carol"):
            add_user(self.datadir, u, PASSWORD)
        self.webhook = WebhookFake()
        self.metrics_port = harness.free_port()
        conf = os.path.join(self.datadir, "archiver.conf")
        with open(conf, "w") as f:
            f.write("push_webhook = on\npush_allow_http = 1\npush_collapse_ms = 200\nmetrics_port = %d\n"
                    % self.metrics_port)
        self.broker = harness.Broker(self.datadir)
        self.arch = Archiver(self.datadir, self.broker.port, ["-c", conf])
        self.alice = None

    def start(self):
        self.broker.start()
        self.arch.start()
        self.alice = harness.Client(self.broker.port, "alice", PASSWORD, client_id="alice@sender")
        assert self.alice.connect() == 0
        return self

    def stop(self, failed=False):
        out = ""
        if self.alice is not None:
            self.alice.close()
        self.webhook.stop()
        if self.webhook.refused:
            out += "---- webhook refused ----\n%s\n" % self.webhook.refused
        self.arch.stop()
        self.broker.stop()
        if failed:
            out += "---- archiver log ----\n%s\n---- broker log ----\n%s" % (
                self.arch.output()[-30000:], self.broker.output()[-5000:])
        shutil.rmtree(self.datadir, ignore_errors=True)
        return out

    def sql(self, text):
        return psql(self.server, self.db, text)

    def register(self, user):
        """user's webhook target, registered over RPC while connected; the
        fake's hook id."""
        c = harness.Client(self.broker.port, user, PASSWORD, client_id="%s@app" % user)
        assert c.connect() == 0
        try:
            hid, url = self.webhook.hook()
            ans = rpc_ok(Rpc(c, user), "push_register", device="bot", provider="webhook", url=url)
            self.webhook.set_secret(hid, ans["secret"])
        finally:
            c.close()
        return hid

    def send(self, to, body="hello"):
        mid = uuid.uuid4().hex
        self.alice.publish(inbox(to, "alice"), harness.envelope(body, id=mid))
        return mid

    def archive_max_seq(self):
        rows = read_db(os.path.join(self.datadir, "archive.db"), "SELECT max(seq) FROM messages")
        return rows[0][0] if rows and rows[0][0] is not None else 0


@pytest.fixture(scope="module")
def node(request):
    if harness.SAN:
        # As test_loader_pg.py: libpq in the sanitized broker's loader child
        # hangs on glibc's gettext lock; the store runs sanitized in the
        # unit tests (test_push_store).
        pytest.skip("libpq in a child of the sanitized plugin hangs on glibc's gettext lock")
    with pg_server() as server:
        yield from harness.serve_stack(request, Node(server, request))


def notified_until(node, hid, n, what):
    """Send alice's texts to the hook's person until n notifications have
    arrived (the archiver learns of a disconnection from the broker's
    presence, a moment after it); bounded in tries and time."""
    deadline = time.monotonic() + T
    sent = []
    while time.monotonic() < deadline and len(sent) < 40:
        if len(node.webhook.deliveries(hid)) >= n:
            return sent
        if not sent or len(node.webhook.deliveries(hid)) < n and time.monotonic() > last + 1:
            sent.append(node.send(what))
            last = time.monotonic()
        time.sleep(0.05)
    raise AssertionError("%d notification(s) to %s; sent %d texts" % (
        len(node.webhook.deliveries(hid)), what, len(sent)))


def test_notified_once_from_the_shared_store(node):
    hid = node.register("bob")
    assert node.sql("SELECT provider, data LIKE '%%/hook/%s%%' FROM push.targets WHERE \"user\"='bob'"
                    % hid) == [["webhook", "t"]]
    sent = notified_until(node, hid, 1, "bob")
    got = node.webhook.notifications(hid)
    assert got[0]["type"] == "message" and got[0]["with"] == "alice" and got[0]["id"] in sent, got
    # Done: the job gone, the cursor past it, the answer recorded.
    harness.wait_for(lambda: node.sql("SELECT count(*) FROM push.queue")[0][0] == "0", T,
                     what="push.queue empty")
    seq = node.archive_max_seq()
    harness.wait_for(lambda: int(node.sql("SELECT value FROM push.meta WHERE key='cursor'")[0][0]) >= seq,
                     T, what="the shared cursor at the archive's seq %d" % seq)
    assert int(node.sql("SELECT last_ok FROM push.targets WHERE \"user\"='bob'")[0][0]) > 0
    # Once: no second request for what was notified.
    time.sleep(0.5)
    assert len(node.webhook.deliveries(hid)) == len(node.webhook.notifications(hid))
    assert not node.webhook.refused, node.webhook.refused


def test_a_gone_takers_job_sent_after_its_lease(node):
    """A job another node's push thread took (its mark: another taker, a
    lease not yet over) is left alone; once the lease is over, this node
    sends it."""
    hid = node.register("carol")
    now = int(time.time() * 1000)
    until = now + 3000
    node.sql("INSERT INTO push.queue(\"user\", device, conv, count, last_seq, msg_id, sender, due,"
             " attempts, created, taken_by, taken_until) VALUES('carol', 'bot', 'd:alice', 1, 1, 'm-gone',"
             " 'alice', %d, 0, %d, 'another-node', %d)" % (now, now, until))
    # Not before the lease is over (the thread looks at least every second).
    time.sleep(2)
    assert node.webhook.deliveries(hid) == []
    harness.wait_for(lambda: node.webhook.deliveries(hid), T, what="the gone taker's job sent")
    assert time.time() * 1000 >= until
    got = node.webhook.notifications(hid)
    assert len(got) == 1 and got[0]["id"] == "m-gone", got
    harness.wait_for(lambda: node.sql("SELECT count(*) FROM push.queue")[0][0] == "0", T,
                     what="push.queue empty")


def health(node):
    """/health's stores, whatever its status."""
    url = "http://127.0.0.1:%d/health" % node.metrics_port
    try:
        with urllib.request.urlopen(url, timeout=T) as r:
            body = r.read()
    except urllib.error.HTTPError as e:
        body = e.read()
    return json.loads(body)["stores"]


def test_health_asks_the_server_for_the_push_store(node):
    assert health(node)["push.db"] == "ok"
    # The schema gone (renamed): /health says so, and ok again once it is back.
    node.sql("ALTER SCHEMA push RENAME TO push_away")
    try:
        assert health(node)["push.db"] == "no push store (schema push) in the database"
    finally:
        node.sql("ALTER SCHEMA push_away RENAME TO push")
    assert health(node)["push.db"] == "ok"
