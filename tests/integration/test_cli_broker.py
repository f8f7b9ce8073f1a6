"""test_cli_broker.py - accounts made with the CLI against a real broker with
the real plugin: a new user logs in within 1 s, a disabled one is refused
(and its live connection closed), a new password replaces the old one, a
deleted user is refused.

Logins are not retried in a loop and failures are kept few (after 3 the
plugin throttles the user name): a reload barrier made with the CLI too (a fresh room with a
watcher as member, polled with SUBSCRIBE until granted) says when the
plugin has read the store, then one login is tried."""
import time

from cli_util import PASSWORD, add_user, ok

NOT_AUTHORIZED = (4, 5)   # MQTT 3.1.1: bad user name or password / not authorised
BOUND = 1.0               # the contract: changes take effect within 1 s


class Barrier:
    def __init__(self, datadir, watcher):
        self.datadir = datadir
        self.watcher = watcher
        self.n = 0

    def __call__(self, t0):
        """Wait until the plugin sees a room made now, after the change made
        since t0; return the seconds from when the commands that made the
        room returned (the contract counts from a command's return: the
        room's commands, run after the change's, stand for it, so the time
        the CLI itself takes to run, several times longer under the
        sanitizers, is not counted)."""
        self.n += 1
        room = "sync%d" % self.n
        ok(self.datadir, "room", "create", room)
        ok(self.datadir, "room", "add", room, "watcher")
        made = time.monotonic()
        topic = "chat/room/%s/#" % room
        while self.watcher.subscribe(topic) >= 0x80:
            assert time.monotonic() - t0 < 5 * BOUND, "the plugin did not reload the store"
            time.sleep(0.02)
        return time.monotonic() - made


def login(broker, clients, user, password, client_id=None):
    c = clients(broker, user, password, client_id=client_id)
    return c, c.connect()


def test_cli_accounts_on_a_live_broker(datadir, store, make_broker, clients):
    store.add_user("watcher", password="watcher-pw")
    broker = make_broker()
    watcher, code = login(broker, clients, "watcher", "watcher-pw")
    assert code == 0
    sync = Barrier(datadir, watcher)

    t0 = time.monotonic()
    add_user(datadir, "alice")
    took = sync(t0)
    live, code = login(broker, clients, "alice", PASSWORD, client_id="alice@phone")
    assert code == 0
    assert took < BOUND, "user added by the CLI usable only after %.2fs" % took

    t0 = time.monotonic()
    ok(datadir, "user", "disable", "alice")
    assert live.disconnected.wait(BOUND), "live connection of a disabled user still open after 1 s"
    live.close()   # no automatic reconnects: failed logins count towards the plugin's throttle
    sync(t0)
    assert login(broker, clients, "alice", PASSWORD)[1] in NOT_AUTHORIZED

    t0 = time.monotonic()
    ok(datadir, "user", "enable", "alice")
    ok(datadir, "user", "passwd", "alice", "--password-stdin", stdin="a-new-password\n")
    sync(t0)
    assert login(broker, clients, "alice", "a-new-password")[1] == 0
    assert login(broker, clients, "alice", PASSWORD)[1] in NOT_AUTHORIZED

    t0 = time.monotonic()
    ok(datadir, "user", "del", "alice")
    sync(t0)
    assert login(broker, clients, "alice", "a-new-password")[1] in NOT_AUTHORIZED
