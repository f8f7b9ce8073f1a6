"""The plugin's loader process: the broker stays single-threaded, the loader
dies with the broker, a killed loader is replaced and store changes flow
again, SIGHUP reaches it, a store too big for a slot keeps the last good
snapshot."""
import os
import signal
import time

import harness
from plugin_util import login, wait_login

PW = "password-xxxx"


def children(pid):
    kids = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return kids


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def loader_of(b):
    """The pid of the broker's loader process (waits for it, bounded)."""
    found = []

    def one():
        found[:] = [k for k in children(b.proc.pid) if comm(k) == "mqchat-loader"]
        return len(found) == 1
    harness.wait_for(one, 10, what="exactly one mqchat-loader child of the broker")
    return found[0]


def extra_fds(pid, db):
    """Descriptors of pid beyond stdin/out/err, its own SQLite files, its
    watch on them and its one socket to the broker: the loader must not keep
    the broker's listeners or clients."""
    links = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        if int(fd) <= 2:
            continue
        try:
            links.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except FileNotFoundError:
            pass    # closed between the listing and the look: not kept
    own = [l for l in links if not l.startswith(db) and l != "anon_inode:inotify"]
    sockets = [l for l in own if l.startswith("socket:")]
    return [l for l in own if not l.startswith("socket:")] + sockets[1:]


def gone(pid):
    """True once pid has exited (a zombie counts: its parent is gone too or
    reaps it)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_broker_stays_single_threaded(store, make_broker, clients):
    store.add_user("alice")
    broker = make_broker()
    login(clients, broker, "alice", PW).close()
    store.add_user("bob")
    wait_login(clients, broker, "bob", PW, timeout=10)[0].close()
    assert os.listdir("/proc/%d/task" % broker.proc.pid) == [str(broker.proc.pid)], (
        "the plugin started a thread in the broker")
    pid = loader_of(broker)
    assert extra_fds(pid, store.path) == [], extra_fds(pid, store.path)


def test_loader_dies_with_a_killed_broker(store, make_broker):
    b = make_broker()
    pid = loader_of(b)
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(10)
    harness.wait_for(lambda: gone(pid), 10, what="the loader to exit after the broker was killed")


def test_loader_stops_with_the_broker(store, make_broker):
    b = make_broker()
    pid = loader_of(b)
    b.stop()
    assert gone(pid), "the loader outlived a clean broker stop"


def test_killed_loader_is_replaced(store, make_broker, clients):
    store.add_user("alice")
    b = make_broker()
    pid = loader_of(b)
    alice = login(clients, b, "alice", PW)
    os.kill(pid, signal.SIGKILL)
    b.wait_log("mqchat: the loader process exited (signal 9)", 10)
    # The snapshot in use stays: logins go on meanwhile.
    login(clients, b, "alice", PW, client_id="alice@two").close()
    b.wait_log("mqchat: started a new loader process", 15)
    new = loader_of(b)
    assert new != pid
    # Forked from a serving broker: none of its sockets came along.
    assert extra_fds(new, store.path) == [], extra_fds(new, store.path)
    # And changes to the store reach the broker again.
    store.add_user("bob")
    wait_login(clients, b, "bob", PW, timeout=10)[0].close()
    assert not alice.disconnected.is_set()


def slices(pid):
    """How many times pid has been given the CPU so far."""
    with open("/proc/%d/schedstat" % pid) as f:
        return int(f.read().split()[2])


def test_watched_store_is_seen_at_once_and_idle_costs_nothing(store, make_broker, clients):
    """The loader watches the store's files: with a poll only every 8 s (1 s
    x 8), a change is in force within a second, and an idle store does not
    wake it."""
    store.add_user("alice")
    b = make_broker(plugin_opts={"reload_ms": 1000})
    pid = loader_of(b)
    alice = login(clients, b, "alice", PW)
    store.add_user("bob")
    _, took = wait_login(clients, b, "bob", PW, timeout=10)
    assert took < 1.0, "a new user took %.2f s to be known" % took
    # Idle: nothing writes the store. Polling every reload_ms would wake the
    # loader about 3 times in 3 s; watched, only the 8 s poll may come. (A
    # window in which something must not happen: no condition ends it.)
    # First let the last change settle: the store's writer closing its
    # connection checkpoints the WAL, an event the loader rechecks a few
    # times over about 0.6 s (loader.c).
    quiet = [slices(pid), time.monotonic()]

    def settled():
        now = slices(pid)
        if now != quiet[0]:
            quiet[:] = [now, time.monotonic()]
        return time.monotonic() - quiet[1] >= 1.0
    harness.wait_for(settled, 10, interval=0.1, what="the loader quiet for a second")
    before = slices(pid)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert slices(pid) - before <= 1, "the loader woke up with nothing to do"
        time.sleep(0.1)
    # An UPDATE (no new row) is seen as soon: disabling alice closes her
    # connection.
    store.sql("UPDATE users SET enabled = 0 WHERE name = 'alice'")
    harness.wait_for(alice.disconnected.is_set, 2, what="alice kicked after being disabled")


def test_unwatched_store_is_polled(store, make_broker, clients):
    """plugin_opt_watch off: the loader polls every reload_ms, and so
    still sees changes."""
    store.add_user("alice")
    b = make_broker(plugin_opts={"reload_ms": 100, "watch": "off"})
    pid = loader_of(b)
    assert "anon_inode:inotify" not in [os.readlink("/proc/%d/fd/%s" % (pid, fd))
                                        for fd in os.listdir("/proc/%d/fd" % pid)]
    store.add_user("bob")
    wait_login(clients, b, "bob", PW, timeout=10)[0].close()


def test_sighup_reaches_the_loader(store, make_broker, clients):
    """With a poll once a minute and no watch, only SIGHUP makes a new user
    known soon."""
    b = make_broker(plugin_opts={"reload_ms": 60000, "watch": "off"})
    loader_of(b)
    store.add_user("carol")
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log("mqchat: reload requested", 10)
    _, took = wait_login(clients, b, "carol", PW, timeout=10)
    assert took < 10


def test_snapshot_too_big_for_its_slot(store, make_broker, clients):
    """A store that outgrows plugin_opt_snapshot_mb: the last good snapshot
    stays in force and the log names the option to raise."""
    store.add_user("alice")
    b = make_broker(plugin_opts={"snapshot_mb": 1})
    login(clients, b, "alice", PW).close()
    big = harness.pbkdf2_hash(PW)
    store.sql("INSERT INTO users(name, kind, nick, pwhash, enabled, created)"
              " WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 19999)"
              " SELECT 'big' || i, 'user', 'big', ?, 1, 0 FROM c", big)
    b.wait_log("plugin_opt_snapshot_mb", 10)
    assert "keeping the last good snapshot" in b.output()
    login(clients, b, "alice", PW, client_id="alice@again").close()
