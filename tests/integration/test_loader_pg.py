"""test_loader_pg.py - the plugin's loader on a user store in PostgreSQL.

Three brokers with the plugin, each with a data folder of its own whose
store.conf names the same database (three nodes sharing one store, no bus),
and the operators' CLI writing in a fourth folder. Each loader LISTENs
(common/userdb_pg.c, userdb__watch_fd) and rebuilds its snapshot when the
version moves (plugin/loader.c), so:
- an account added on one node logs in on all three;
- `user disable` and `user revoke` cut the connected clients off on every
  node within 1 s of the CLI's exit (docs/SCALING.md, "Revocation on every
  node within 1 s"), and the CLI returns only once every node's broker
  has the change in force (auth.node_applied);
- with 100,000 accounts (a rebuild of about the bound's length), the cut
  comes from the loaders' short list ahead of the rebuild (plugin/cuts.c);
- the archiver's answers that wait for a change to be in force wait for
  every node, as the CLI does;
- with PostgreSQL stopped as a crash would, the brokers keep serving from
  their snapshots, and a change made after it is back is applied.

The server is the test's own (tests/unit/pg_cluster.sh); the module is
skipped, saying why, when PostgreSQL 15 is not installed. The cut-off
times are printed at the end of the module (pytest -s shows them)."""
import base64
import hashlib
import os
import secrets
import shutil
import signal
import statistics
import threading
import time

import pytest

import harness
from archiver_util import Archiver, Rpc, rpc_ok
from cli_util import add_user, ok
from pg_util import cluster, pg_server, psql, write_store_conf
from plugin_util import RELOAD_BOUND, login, wait_disconnected, wait_login

PASSWORD = "correct-horse"
NODES = 3
# Revocation on every node (SCALING.md): from the CLI's exit to the client's
# connection closed.
CUT_BOUND = 1.0
RUNS = 3
# The loaders' own polling slower than that bound: only their LISTEN can
# meet it.
RELOAD_MS = 2000

# How long test_the_archivers_answers_wait_for_every_node keeps a broker
# stopped: under the archiver's own deadline (archiver/later.c, 5 s).
STOPPED_S = 1.5

CUTS = {"disable": [], "revoke": []}
# The same cut-offs from the CLI's start (its commit is in between).
FROM_START = {"disable": [], "revoke": []}


@pytest.fixture(scope="module")
def server():
    """The folder of a running server of this module's own."""
    try:
        with pg_server() as top:
            yield top
    finally:
        for kind, cuts in CUTS.items():
            if cuts and kind.startswith("large"):
                print("\nwith %d accounts, %s: %d clients cut off, seconds after the CLI's start:"
                      " min %.3f median %.3f max %.3f" % (LARGE_ACCOUNTS, kind[6:], len(cuts), min(cuts),
                                                         statistics.median(cuts), max(cuts)))
            elif cuts:
                print("\n%s: %d clients cut off, seconds after the CLI's exit: min %.3f median %.3f"
                      " max %.3f; after its start: min %.3f median %.3f max %.3f" % (
                          kind, len(cuts), min(cuts), statistics.median(cuts), max(cuts),
                          min(FROM_START[kind]), statistics.median(FROM_START[kind]),
                          max(FROM_START[kind])))


_dbs = iter(range(1, 1000))


class Nodes:
    def __init__(self, server, db, admin, dirs, brokers):
        self.server, self.db, self.admin, self.dirs, self.brokers = server, db, admin, dirs, brokers

    def listeners(self):
        """How many sessions LISTEN on the loaders' channel."""
        return int(psql(self.server, self.db, "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname=current_database() AND query='LISTEN mqchat_auth'")[0][0])


@pytest.fixture
def nodes(server, request):
    """Three started brokers, each on a data folder of its own naming one
    new database, and a fourth folder with no broker where the CLI runs
    (so it does not wait for a broker of its folder to apply a change: its
    exit is its commit); the schema made by `init` there."""
    if harness.SAN:
        # The broker is not built with the sanitizers; libasan preloaded
        # into it leaves glibc's gettext lock (_nl_state_lock) with a
        # reader count below zero, so libpq's first bindtextdomain in the
        # loader child (forked from it) waits on it forever and the broker
        # never starts (gdb on both processes). Without the sanitizers the
        # lock is sound and these tests run; the store's own code runs
        # sanitized in test_store_pg.py and the unit tests.
        pytest.skip("libpq in a child of the sanitized plugin hangs on glibc's gettext lock")
    db = "n%d" % next(_dbs)
    psql(server, "postgres", "CREATE DATABASE %s" % db)
    admin = harness.make_datadir()
    dirs = [harness.make_datadir() for _ in range(NODES)]
    for d in [admin] + dirs:
        write_store_conf(d, server, db)
    ok(admin, "init")
    brokers = []
    try:
        for d in dirs:
            b = harness.Broker(d, plugin_opts={"reload_ms": RELOAD_MS})
            brokers.append(b)
            b.start()
        n = Nodes(server, db, admin, dirs, brokers)
        # Every loader listens before the test changes anything.
        harness.wait_for(lambda: n.listeners() == NODES, RELOAD_BOUND, what="three LISTEN sessions")
        yield n
    finally:
        failed = getattr(request.node, "rep_call", None)
        for b in brokers:
            b.stop()
            if failed is not None and failed.failed:
                print("---- broker log (port %d) ----\n%s" % (b.port, b.output()))
        for d in [admin] + dirs:
            shutil.rmtree(d, ignore_errors=True)


def stamped(c):
    """Note when c's connection is closed (c.cut_at, monotonic)."""
    inner = c.c.on_disconnect

    def on_disconnect(*args):
        c.cut_at = time.monotonic()
        inner(*args)
    c.cut_at = None
    c.c.on_disconnect = on_disconnect
    return c


def login_everywhere(clients, nodes, user, password, client_id=None):
    """Log user in on every node (waiting for a change to get there);
    the clients, each noting when it is cut off."""
    return [stamped(wait_login(clients, b, user, password, client_id=client_id)[0])
            for b in nodes.brokers]


def cut_off(nodes, cs, kind, *cli_args):
    """Run the CLI in the folder without a broker; every client in cs must
    be cut off within CUT_BOUND of its exit. Returns the times."""
    start = time.monotonic()
    ok(nodes.admin, *cli_args)
    done = time.monotonic()
    for c in cs:
        wait_disconnected(c, CUT_BOUND + RELOAD_BOUND, what=" ".join(cli_args))
    cuts = [c.cut_at - done for c in cs]
    CUTS[kind] += cuts
    FROM_START[kind] += [c.cut_at - start for c in cs]
    assert max(cuts) < CUT_BOUND, "%s: cut off %s s after the CLI's exit" % (
        " ".join(cli_args), ["%.3f" % t for t in cuts])
    return cuts


def test_an_account_added_logs_in_on_every_node(nodes, clients):
    add_user(nodes.admin, "alice")
    for b in nodes.brokers:
        _, took = wait_login(clients, b, "alice", PASSWORD)
        assert took < RELOAD_BOUND


def test_disable_cuts_off_on_every_node(nodes, clients):
    add_user(nodes.admin, "alice")
    for _ in range(RUNS):
        cs = login_everywhere(clients, nodes, "alice", PASSWORD)
        cut_off(nodes, cs, "disable", "user", "disable", "alice")
        # Refused on every node, and back after enable.
        for b in nodes.brokers:
            c = clients(b, "alice", PASSWORD)
            c.c._reconnect_on_failure = False
            assert c.connect() != 0
        ok(nodes.admin, "user", "enable", "alice")


def give_token(nodes, user, device):
    """A token for user's device as the archiver's device_token makes it
    (its SHA-256 kept), with its change row and notification, as
    userdb_pg.c writes them."""
    token = "mqt1." + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    psql(nodes.server, nodes.db,
         "INSERT INTO auth.devices(\"user\", device, token_sha256, created)"
         " VALUES('%s', '%s', '%s', 0);"
         " WITH c AS (INSERT INTO auth.changes(at, kind, name) VALUES(0, 'device', '%s/%s')"
         " RETURNING id) SELECT pg_notify('mqchat_auth', c.id || ' device %s/%s') FROM c"
         % (user, device, hashlib.sha256(token.encode()).hexdigest(), user, device, user, device))
    return token


def test_revoke_cuts_off_a_device_on_every_node(nodes, clients):
    add_user(nodes.admin, "alice")
    for run in range(RUNS):
        device = "phone%d" % run
        token = give_token(nodes, "alice", device)
        cs = login_everywhere(clients, nodes, "alice", token, client_id="alice@" + device)
        # The account's password login is not touched by the revocation.
        others = [login(clients, b, "alice", PASSWORD, client_id="alice@laptop") for b in nodes.brokers]
        cut_off(nodes, cs, "revoke", "user", "revoke", "alice", device)
        for c in others:
            assert not c.disconnected.is_set()
            c.close()


# A store as large as README's "Sizes" plans for: its rebuild from
# PostgreSQL takes most of the revocation bound (plugin/cuts.c).
LARGE_ACCOUNTS = 100000


def test_cut_off_ahead_of_a_large_rebuild(nodes, clients):
    """With 100,000 accounts, each node's rebuild takes about as long as
    the bound, three at once longer: the disabled account is closed on all
    three from the short list (plugin/cuts.c) within 1 s of the CLI's
    start, refused at once when it logs in again, and back after enable."""
    add_user(nodes.admin, "alice")
    psql(nodes.server, nodes.db,
         "INSERT INTO auth.users(name, kind, nick, pwhash, enabled, created)"
         " SELECT 'big' || i, 'user', 'big' || i, u.pwhash, true, 0"
         " FROM generate_series(1, %d) AS i, auth.users AS u WHERE u.name = 'alice';"
         " WITH c AS (INSERT INTO auth.changes(at, kind, name) VALUES(0, 'user', 'big') RETURNING id)"
         " SELECT pg_notify('mqchat_auth', c.id || ' user big') FROM c" % LARGE_ACCOUNTS)
    for b in nodes.brokers:
        wait_login(clients, b, "big%d" % LARGE_ACCOUNTS, PASSWORD, timeout=30)
    for run in range(RUNS):
        cs = login_everywhere(clients, nodes, "alice", PASSWORD)
        start = time.monotonic()
        ok(nodes.admin, "user", "disable", "alice")
        for c in cs:
            wait_disconnected(c, CUT_BOUND + RELOAD_BOUND, what="user disable alice")
        cuts = [c.cut_at - start for c in cs]
        CUTS["large disable"] = CUTS.get("large disable", []) + cuts
        assert max(cuts) < CUT_BOUND, "cut off %s s after the CLI's start" % ["%.3f" % t for t in cuts]
        for b in nodes.brokers:
            assert b.output().count("closing connections of alice (disabled or deleted; the"
                                    " snapshot follows)") == run + 1, b.output()[-2000:]
            c = clients(b, "alice", PASSWORD)
            c.c._reconnect_on_failure = False
            assert c.connect() != 0
        ok(nodes.admin, "user", "enable", "alice")
    # A revoked device token likewise: its token connections closed.
    token = give_token(nodes, "alice", "phone")
    cs = login_everywhere(clients, nodes, "alice", token, client_id="alice@phone")
    start = time.monotonic()
    ok(nodes.admin, "user", "revoke", "alice", "phone")
    for c in cs:
        wait_disconnected(c, CUT_BOUND + RELOAD_BOUND, what="user revoke alice phone")
    cuts = [c.cut_at - start for c in cs]
    CUTS["large revoke"] = cuts
    assert max(cuts) < CUT_BOUND, "cut off %s s after the CLI's start" % ["%.3f" % t for t in cuts]
    for b in nodes.brokers:
        assert "closing alice@phone (device token revoked; the snapshot follows)" in b.output()


def test_postgresql_down_then_back(nodes, clients):
    add_user(nodes.admin, "alice")
    add_user(nodes.admin, "bob")
    cs = login_everywhere(clients, nodes, "bob", PASSWORD)
    for b in nodes.brokers:
        wait_login(clients, b, "alice", PASSWORD)
    cluster(nodes.server, "crash")
    try:
        for b in nodes.brokers:
            b.wait_log("keeping the last good snapshot", timeout=RELOAD_BOUND * 3)
        # Served from the snapshot: a new login, the connected ones kept.
        for b in nodes.brokers:
            login(clients, b, "alice", PASSWORD)
        assert not any(c.disconnected.is_set() for c in cs)
    finally:
        cluster(nodes.server, "resume")
    # A change made once it is back reaches every node, whether its loader
    # has listened again yet or not.
    ok(nodes.admin, "user", "disable", "bob")
    for c in cs:
        wait_disconnected(c, RELOAD_MS / 1000 + RELOAD_BOUND, what="user disable bob after the restart")
    # And once every loader listens again, within the revocation bound.
    harness.wait_for(lambda: nodes.listeners() == NODES, 10, what="three LISTEN sessions again")
    cs = login_everywhere(clients, nodes, "alice", PASSWORD)
    cut_off(nodes, cs, "disable", "user", "disable", "alice")


def test_the_archiver_runs_on_the_store(nodes, clients):
    """`mqchat-archiver run` in a broker's folder works on the store: it
    logs in, answers RPC, and a device token it issues logs in on the other
    nodes."""
    d = nodes.dirs[0]
    ok(d, "init")
    assert not os.path.exists(os.path.join(d, "auth.db"))
    add_user(nodes.admin, "alice")
    arch = Archiver(d, nodes.brokers[0].port)
    try:
        arch.start()
        c, _ = wait_login(clients, nodes.brokers[0], "alice", PASSWORD)
        ans = rpc_ok(Rpc(c, "alice"), "device_token", device="phone", password=PASSWORD)
        for b in nodes.brokers[1:]:
            wait_login(clients, b, "alice", ans["token"], client_id="alice@phone")
    finally:
        arch.stop()


def test_the_archivers_answers_wait_for_every_node(nodes, clients):
    """An RPC whose change must be in force before its answer (block) is
    answered once every node heard from in the last 3 s uses it, not this
    node's broker alone: with another node's broker stopped (SIGSTOP: its
    loader still says it is alive, at the version before), the answer
    waits until that broker runs again and takes the change."""
    d = nodes.dirs[0]
    ok(d, "init")
    for name in ("alice", "bob", "carol"):
        add_user(nodes.admin, name)
    arch = Archiver(d, nodes.brokers[0].port)
    stopped = nodes.brokers[1]
    try:
        arch.start()
        c, _ = wait_login(clients, nodes.brokers[0], "alice", PASSWORD)
        rpc = Rpc(c, "alice")
        start = time.monotonic()
        rpc_ok(rpc, "block", user="bob")
        assert time.monotonic() - start < CUT_BOUND     # every node running
        stopped.proc.send_signal(signal.SIGSTOP)
        resume = threading.Timer(STOPPED_S, stopped.proc.send_signal, (signal.SIGCONT,))
        resume.start()
        start = time.monotonic()
        rpc_ok(rpc, "block", user="carol")
        took = time.monotonic() - start
        resume.join()
        assert STOPPED_S <= took < STOPPED_S + CUT_BOUND, took
    finally:
        stopped.proc.send_signal(signal.SIGCONT)
        arch.stop()


def test_done_when_in_force_on_every_node(nodes, clients):
    """The CLI returns once every node's broker uses its change
    (auth.node_applied): the clients are cut off by then. A node stopped
    is waited for only until its record is 3 s old."""
    add_user(nodes.admin, "alice")
    rows = psql(nodes.server, nodes.db, "SELECT node FROM auth.node_applied ORDER BY node")
    assert len(rows) == NODES, rows
    for _ in range(RUNS):
        cs = login_everywhere(clients, nodes, "alice", PASSWORD)
        ok(nodes.admin, "user", "disable", "alice")
        done = time.monotonic()
        for c in cs:
            wait_disconnected(c, CUT_BOUND, what="user disable alice")
        # The paho thread notes the close a little after it happened.
        late = [c.cut_at - done for c in cs]
        assert max(late) < 0.05, "cut off %s s after the CLI's exit" % ["%.3f" % t for t in late]
        ok(nodes.admin, "user", "enable", "alice")
    nodes.brokers[2].stop()
    r = ok(nodes.admin, "user", "disable", "alice")
    assert r.elapsed < 4.5, r
