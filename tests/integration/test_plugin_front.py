"""plugin_opt_front_addresses: connections from a front (HAProxy, whose
address every client behind it shares) skip the plugin's per-address rules,
and the name's throttle keys on the name alone; from other addresses
nothing changes. Bad values stop the broker with a clear message.

A real broker with the plugin on 127.0.0.1; clients bind source addresses
of 127.0.0.0/8 (loopback answers for all of them). The front here is
127.0.0.1 and 127.0.0.4/31 (127.0.0.4 and .5); 127.0.0.6 and .7 are
ordinary clients' addresses.
"""

import pytest

import harness
from plugin_util import raw_connect
from test_broker_limits import status

FRONT = "127.0.0.1, 127.0.0.4/31"
PW = "password-front"
# The plugin's rules (plugin/README.md, "Login"): the address locks from its
# 10th hashed failure; a name from its 3rd; 5 registrations a minute.
ADDRESS_FREE_FAILURES = 10
USER_FREE_FAILURES = 3
REGISTER_PER_MINUTE = 5


@pytest.fixture
def broker(store, make_broker):
    for i in range(20):
        store.add_user("p%d" % i, PW)
    # Every refusal logged (none suppressed), so the log's lines can be counted.
    return make_broker(plugin_opts={"front_addresses": FRONT, "log_rate": 100000})


def fail_on_made_up_names(broker, source, n):
    """n hashed failures from source, each on a name of its own (so no
    name's throttle starts): CONNACK codes."""
    return [raw_connect(broker.port, "nobody%d" % i, "nobody%d" % i, "wrong", source=source)
            for i in range(n)]


def first_logins(broker, source):
    """The 20 accounts' first (uncached, hashed) logins from source, as fast
    as they come: CONNACK codes."""
    return [raw_connect(broker.port, "p%d" % i, "p%d" % i, PW, source=source) for i in range(20)]


def test_failures_from_the_front_lock_no_address(broker):
    """Failures on made-up names from the front: none is refused unhashed,
    and then every account behind the front logs in at once. From an
    ordinary address the same failures lock it: made-up names are refused
    without a hash, and real accounts' logins only a few a second."""
    n = ADDRESS_FREE_FAILURES + 10
    assert fail_on_made_up_names(broker, "127.0.0.1", n) == [5] * n
    assert broker.output().count("throttled (address)") == 0
    assert first_logins(broker, "127.0.0.1") == [0] * 20

    assert fail_on_made_up_names(broker, "127.0.0.6", n) == [5] * n
    assert broker.output().count("throttled (address)") == n - ADDRESS_FREE_FAILURES


def test_an_ordinary_address_is_still_locked(store, broker):
    """The old rule, from an address not listed: real accounts' uncached
    logins from a locked address get through a few a second, not all 20."""
    fail_on_made_up_names(broker, "127.0.0.7", ADDRESS_FREE_FAILURES)
    got = first_logins(broker, "127.0.0.7")
    assert got.count(0) < 20 and got.count(5) > 0, got
    assert "throttled (address)" in broker.output()


def test_per_account_throttle_stays_through_the_front(clients, broker):
    """A name's failures through one front address lock that name through
    every front address (the key is the name alone), right password or
    not; login_status through the front says so. From an ordinary address
    the name is not held back (its key is the name and that address)."""
    for i in range(USER_FREE_FAILURES):
        assert raw_connect(broker.port, "p1", "p1", "wrong-%d" % i, source="127.0.0.4") == 5
    assert raw_connect(broker.port, "p1", "p1", PW, source="127.0.0.5") == 5
    assert raw_connect(broker.port, "p1", "p1", PW, source="127.0.0.1") == 5
    assert "throttled (user)" in broker.output()
    resp = status(clients, broker, "p1", "127.0.0.1")
    assert resp["status"] == "throttled" and resp["retry_ms"] > 0, resp
    assert status(clients, broker, "p2", "127.0.0.1")["status"] == "refused"
    assert raw_connect(broker.port, "p1", "p1", PW, source="127.0.0.6") == 0


def test_registration_connections_not_counted_per_front_address(broker):
    """The front counts registrations per client address (config/haproxy.cfg);
    the plugin does not count its address. From an ordinary address the
    plugin's 5 a minute stay."""
    n = REGISTER_PER_MINUTE + 5
    front = [raw_connect(broker.port, "_register@front%04d" % i, "_register", source="127.0.0.1")
             for i in range(n)]
    assert front == [0] * n
    other = [raw_connect(broker.port, "_register@other%04d" % i, "_register", source="127.0.0.6")
             for i in range(REGISTER_PER_MINUTE + 1)]
    assert other == [0] * REGISTER_PER_MINUTE + [5]
    assert "too many registration connections" in broker.output()


@pytest.mark.parametrize("value,says", [
    ("10.0.0.256", '"10.0.0.256" is not an IPv4 or IPv6 address or network'),
    ("10.0.0.0/33", '"10.0.0.0/33" is not an IPv4 or IPv6 address'),
    ("fd00::/129", '"fd00::/129" is not'),
    ("10.0.0.1 haproxy.example.org", '"haproxy.example.org" is not'),
    ("10.0.0.1;10.0.0.2", '"10.0.0.1;10.0.0.2" is not'),
    ("10.0.0.0/8x", '"10.0.0.0/8x" is not'),
    ("10.0.0.1/8", '"10.0.0.1/8" has bits set past its prefix'),
    (",", "plugin_opt_front_addresses is empty"),
])
def test_bad_values_stop_the_broker(datadir, store, value, says):
    b = harness.Broker(datadir, plugin_opts={"front_addresses": value})
    try:
        rc = b.start(expect_fail=True)
        out = b.output()
    finally:
        b.stop()
    assert rc != 0, "the broker started with plugin_opt_front_addresses %r" % value
    assert "mqchat: plugin_opt_front_addresses" in out or "mqchat: " + says in out, out
    assert says in out, out
