"""The plugin's figures on $SYS/mqchat/plugin (plugin/stats.c), read the way
the archiver reads them: a service account subscribes to $SYS/mqchat/plugin
and $SYS/broker/#, and Prometheus' own text parser
(prometheus_client.parser) reads every payload. The counters move by
exactly what the test did (bad logins of several kinds, refused publishes
and subscriptions, a disabled account kicked); a person is refused $SYS;
plugin_opt_stats_interval 0 publishes nothing, a bad value stops the
broker."""
import queue
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

import harness
from plugin_util import (PROTOCOLS, connect, expect_none, inbox, login, publish,
                         refused_sub_code, subscribe_ok)

PW = "password-xxxx"
TOPIC = "$SYS/mqchat/plugin"
INTERVAL = 1            # plugin_opt_stats_interval of the module's broker
WAIT = 15.0             # generous: a busy 2-core machine, maybe sanitized


class Stack:
    """One broker with the plugin (figures every second, $SYS every second)
    and a store of four accounts, for the whole module."""

    def __init__(self):
        self.datadir = harness.make_datadir()
        self.store = harness.Store(self.datadir + "/auth.db")
        for name in ("alice", "bob"):
            self.store.add_user(name, PW)
        self.store.add_user("dave", PW, enabled=False)
        self.store.add_user("svc", PW, kind="service")
        self.broker = harness.Broker(self.datadir, plugin_opts={"stats_interval": INTERVAL},
                                     extra_conf="sys_interval 1")

    def start(self):
        self.broker.start()

    def stop(self, failed=False):
        out = self.broker.output() if failed else ""
        self.broker.stop()
        return out


@pytest.fixture(scope="module")
def stack(request):
    yield from harness.serve_stack(request, Stack())


def parse(payload):
    """{(sample name, ((label, value), ...)): value} of one payload, after
    checking what the archiver checks before it passes the text on."""
    assert len(payload) < 16384, len(payload)
    text = payload.decode("ascii")
    assert text.endswith("\n")
    for line in text.splitlines():
        assert line.startswith(("mqchat_plugin_", "# ")), line
        assert all(0x20 <= ord(ch) <= 0x7e for ch in line), line
    out = {}
    types = {}
    for fam in text_string_to_metric_families(text):
        assert fam.name.startswith("mqchat_plugin_"), fam.name
        assert fam.name not in types, "a second family " + fam.name
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out, "twice: %r" % (key,)
            out[key] = s.value
    assert types["mqchat_plugin_logins"] == "counter", types
    assert types["mqchat_plugin_snapshot_age_seconds"] == "gauge", types
    return out


def figures(c, timeout=WAIT):
    """The next figures c receives (other messages are kept in c.sys)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "%s: no message on %s within %.1fs" % (c.client_id, TOPIC, timeout)
        try:
            m = c.messages.get(timeout=left)
        except queue.Empty:
            continue
        if m.topic == TOPIC:
            assert m.qos == 0 and not m.retain, (m.qos, m.retain)
            return parse(m.payload)
        c.sys[m.topic] = m.payload


def figures_after(c):
    """Figures built after everything c's broker did before this call: the
    broker answers the barrier after it, and sends whatever it published
    before the answer first."""
    c.barrier()
    while True:
        try:
            m = c.messages.get_nowait()
        except queue.Empty:
            break
        if m.topic != TOPIC:
            c.sys[m.topic] = m.payload
    return figures(c)


def login_series(result, reason):
    return ("mqchat_plugin_logins_total", (("reason", reason), ("result", result)))


def refusal_series(reason):
    return ("mqchat_plugin_refusals_total", (("reason", reason),))


def kick_series(reason):
    return ("mqchat_plugin_kicks_total", (("reason", reason),))


def gauge(name):
    return (name, ())


def assert_moved(before, after, want):
    """Every counter moved by exactly want[series] (0 if not named)."""
    wrong = {}
    for key, v in after.items():
        if not key[0].endswith("_total"):
            continue
        d = v - before.get(key, 0)
        if d != want.get(key, 0):
            wrong[key] = (d, want.get(key, 0))
    missing = [k for k in want if k not in after]
    assert not wrong and not missing, "moved (got, want): %s; missing: %s" % (wrong, missing)


def service(clients, broker, client_id="svc"):
    svc = login(clients, broker, "svc", PW, client_id=client_id)
    svc.sys = {}
    assert svc.subscribe(TOPIC, qos=0) == 0
    assert svc.subscribe("$SYS/broker/#", qos=0) == 0
    return svc


def test_service_sees_what_happened(stack, clients):
    b = stack.broker
    svc = service(clients, b)
    before = figures_after(svc)

    # Logins: two wrong passwords, an unknown name, a disabled account
    # (right password), another's client id, no password; then two good
    # ones (the second from the credential cache) and bob.
    for user, pw, cid in (("alice", "wrong-password", None), ("alice", "wrong-password", None),
                          ("nobody", PW, None), ("dave", PW, None), ("alice", PW, "bob"),
                          ("alice", None, None)):
        c, code = connect(clients, b, user, pw, client_id=cid)
        assert code != 0, (user, cid, code)
        c.close()
    alice = login(clients, b, "alice", PW, v5=True)
    login(clients, b, "alice", PW, client_id="alice@two")
    login(clients, b, "bob", PW)
    # Refused publishes (MQTT 5: each gets PUBACK 0x87) and subscriptions.
    for topic, payload, retain in ((inbox("nobody", "alice"), harness.envelope("x"), False),
                                   (inbox("bob", "alice"), harness.envelope("x"), True),
                                   (inbox("bob", "alice"), "not json", False),
                                   ("chat/room/nowhere/alice", harness.envelope("x"), False)):
        assert publish(alice, topic, payload, retain=retain) == 0x87, topic
    for f in ("$SYS/#", "$SYS/broker/#", TOPIC):
        assert alice.subscribe(f) == refused_sub_code(True), f

    after = figures_after(svc)
    assert_moved(before, after, {
        login_series("refused", "bad_password"): 2,
        login_series("refused", "unknown_user"): 1,
        login_series("refused", "disabled"): 1,
        login_series("refused", "bad_client_id"): 1,
        login_series("refused", "no_password"): 1,
        login_series("ok", "password"): 2,
        login_series("cached", "credential_cache"): 1,
        refusal_series("no_recipient"): 1,
        refusal_series("retained"): 1,
        refusal_series("invalid_envelope"): 1,
        refusal_series("not_member"): 1,
        refusal_series("topic_not_allowed"): 3,
    })
    assert after[gauge("mqchat_plugin_users")] == 4
    assert after[gauge("mqchat_plugin_rooms")] == 0
    # svc, alice twice, bob (the refused ones are gone once the broker
    # has seen them go).
    harness.wait_for(lambda: figures(svc)[gauge("mqchat_plugin_connections")] == 4, WAIT,
                     what="4 connections in the figures")
    # The broker's own figures reach the service as well.
    assert "$SYS/broker/uptime" in svc.sys and "$SYS/broker/clients/connected" in svc.sys, \
        sorted(svc.sys)

    # bob disabled in the store: a new snapshot, and bob kicked.
    before = figures_after(svc)
    stack.store.set_enabled("bob", False)
    after = harness.wait_for(
        lambda: (lambda f: f if f[kick_series("disabled")] > before[kick_series("disabled")]
                 else None)(figures(svc)), WAIT, what="the kick in the figures")
    assert_moved(before, after, {kick_series("disabled"): 1,
                                 ("mqchat_plugin_snapshot_reloads_total", ()): 1})
    assert after[gauge("mqchat_plugin_snapshot_age_seconds")] < WAIT
    stack.store.set_enabled("bob", True)


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_person_is_refused_sys(stack, clients, v5):
    b = stack.broker
    svc = service(clients, b, client_id="svc@watch")
    alice = login(clients, b, "alice", PW, client_id="alice@sys", v5=v5)
    for f in ("$SYS/#", "$SYS/broker/#", "$SYS/broker/uptime", TOPIC, "$SYS/mqchat/#"):
        assert alice.subscribe(f) == refused_sub_code(v5), f
    # Two rounds of figures and of $SYS/broker go out meanwhile: none to alice.
    figures_after(svc)
    figures(svc)
    expect_none(alice)


def test_interval_zero_publishes_nothing(store, make_broker, clients):
    store.add_user("svc", PW, kind="service")
    b = make_broker(plugin_opts={"stats_interval": 0}, extra_conf="sys_interval 1")
    svc = service(clients, b)
    # The broker's uptime goes 3 s on (3 of its $SYS rounds; 3 would-be
    # intervals of figures at 1 s): nothing on $SYS/mqchat/plugin.
    seen = []
    deadline = time.monotonic() + WAIT
    while len(seen) < 2 or int(seen[-1].split()[0]) - int(seen[0].split()[0]) < 3:
        m = svc.messages.get(timeout=max(0.1, deadline - time.monotonic()))
        assert m.topic != TOPIC, "figures published with plugin_opt_stats_interval 0"
        if m.topic == "$SYS/broker/uptime":
            seen.append(m.payload.decode())
        assert time.monotonic() < deadline, seen
    svc.barrier()
    while not svc.messages.empty():
        assert svc.messages.get_nowait().topic != TOPIC


@pytest.mark.parametrize("value", ["-1", "3601", "5s"])
def test_bad_interval_stops_the_broker(store, make_broker, value):
    b = make_broker(start=False, plugin_opts={"stats_interval": value})
    assert b.start(expect_fail=True) != 0
    assert "plugin_opt_stats_interval must be an integer in 0..3600, not \"%s\"" % value \
        in b.output(), b.output()
