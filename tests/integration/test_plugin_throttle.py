"""Login throttling: a flood of wrong passwords for one account is refused
before any hash is computed, without locking anyone else out (nor the
account's owner, once their credentials have verified)."""
import statistics
import threading
import time

from harness import pbkdf2_hash
from plugin_util import login, raw_connect

PW = "password-xxxx"
# Costly on purpose: about 45 ms per verification in the plugin, so "refused
# before hashing" is visible from outside as a much faster refusal.
SLOW_ITERATIONS = 100000
ATTEMPTS = 200
FLOOD_SECONDS = 20.0
PACE = 0.01


def attempt(port, user, password, cid=None):
    t0 = time.monotonic()
    code = raw_connect(port, cid or user, user, password)
    return code, time.monotonic() - t0


class Flood:
    """Wrong passwords for one account from 127.0.0.1 in a background thread,
    bounded by ATTEMPTS and FLOOD_SECONDS."""

    def __init__(self, port, user):
        self.port, self.user = port, user
        self.results = []
        self.started = threading.Event()
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        end = time.monotonic() + FLOOD_SECONDS
        for i in range(ATTEMPTS):
            if self.stop.is_set() or time.monotonic() > end:
                break
            self.results.append(attempt(self.port, self.user, "wrong-%d" % i))
            if i >= 20:
                self.started.set()
            time.sleep(PACE)   # spread the flood over a few seconds
        self.started.set()

    def __enter__(self):
        self.t.start()
        assert self.started.wait(FLOOD_SECONDS + 5), "flood did not get going"
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join(FLOOD_SECONDS + 5)

    def accepted(self):
        return [i for i, (code, _) in enumerate(self.results) if code == 0]


def test_flood_is_refused_before_hashing(store, make_broker):
    store.add_user("eve", password="eve-password")
    store.sql("UPDATE users SET pwhash=? WHERE name=?",
              pbkdf2_hash("eve-password", iterations=SLOW_ITERATIONS), "eve")
    b = make_broker()
    results = []
    end = time.monotonic() + FLOOD_SECONDS
    for i in range(60):
        if time.monotonic() > end:
            break
        results.append(attempt(b.port, "eve", "wrong-%d" % i))
    ok = [i for i, (code, _) in enumerate(results) if code == 0]
    assert not ok, "wrong passwords accepted at attempts %s" % ok
    first = results[0][1]   # nothing to throttle yet: a full verification
    last = statistics.median(t for _, t in results[-20:])
    assert last < first / 3, (
        "wrong-password attempts are not throttled before hashing: the first took %.1f ms, "
        "the last 20 took %.1f ms (median) of %d" % (first * 1000, last * 1000, len(results)))
    assert all(code is not None for code, _ in results), "a throttled attempt got no CONNACK"


def test_other_users_log_in_during_flood(store, make_broker, clients):
    store.add_user("eve", password="eve-password")
    store.add_user("frank", password="frank-password")   # never logged in before
    store.add_user("grace", password="grace-password")
    b = make_broker()
    with Flood(b.port, "eve") as flood:
        for user in ("frank", "grace"):
            t0 = time.monotonic()
            login(clients, b, user, user + "-password").close()
            took = time.monotonic() - t0
            assert took < 2.0, "%s needed %.2fs to log in during a flood on eve" % (user, took)
        # The same through a raw socket (no client library in between).
        code, took = attempt(b.port, "frank", "frank-password", cid="frank@raw")
        assert code == 0, "frank refused (CONNACK %r) during a flood on eve" % code
        assert took < 2.0, "frank needed %.2fs during a flood on eve" % took
        assert flood.t.is_alive(), "the flood ended before the logins: nothing shown"
    assert len(flood.results) >= 20, "the flood made only %d attempts" % len(flood.results)
    assert not flood.accepted(), "flood attempts with wrong passwords accepted: %s" % flood.accepted()


def test_verified_owner_logs_in_during_flood_on_own_account(store, make_broker, clients):
    store.add_user("alice", password="alice-password")
    b = make_broker()
    login(clients, b, "alice", "alice-password").close()     # verified once
    with Flood(b.port, "alice") as flood:
        for cid in ("alice", "alice@phone"):
            t0 = time.monotonic()
            code, took = attempt(b.port, "alice", "alice-password", cid=cid)
            assert code == 0, ("alice (verified before) refused with CONNACK %r while her "
                               "account is flooded (%d wrong attempts so far)" % (code, len(flood.results)))
            assert took < 2.0, "alice needed %.2fs during the flood" % (time.monotonic() - t0)
        c = login(clients, b, "alice", "alice-password", client_id="alice@paho")
        c.close()
        assert flood.t.is_alive(), "the flood ended before the logins: nothing shown"
    assert not flood.accepted(), "flood attempts with wrong passwords accepted: %s" % flood.accepted()
