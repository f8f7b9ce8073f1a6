"""test_client_restart.py - a broker restart during listen loses nothing:
listen reconnects with backoff into its persistent session, and what was
sent while it was away arrives once, in order."""
import harness
from client_util import Listener, ok, texts, users


def test_broker_restart_during_listen_loses_nothing(store, make_broker, datadir, clients):
    users(store, "alice", "bob")
    b = make_broker()
    with Listener(b, datadir, "bob", timeout=1) as bob:
        bob.wait_ready()
        ok(b, datadir, "alice", "send", "bob", "before 1")
        ok(b, datadir, "alice", "send", "bob", "before 2")
        bob.wait_texts(2)

        b.stop()
        bob.wait_err("connection lost")
        # backoff grows while the broker is down; once bob waits 2 s, the
        # sender below is done long before his next attempt
        bob.wait_err("retrying in 2000 ms")
        b.start()
        # Sent while bob is still in his reconnect backoff: queued in his
        # persistent session, which the broker restored from its
        # persistence file.
        sender = clients(b, "alice", "password-xxxx", client_id="alice@py", v5=True)
        assert sender.connect() == 0
        for i in range(5):
            sender.publish("chat/inbox/bob/alice", harness.envelope("after %d" % i))
        log = b.output()
        queued = "as bob@test" not in log[log.rfind("mosquitto version 2.0.11 running"):]
        bob.wait_err("reconnected")
        bob.wait_texts(7)

        b.restart()
        bob.wait_err("reconnected", timeout=15)
        ok(b, datadir, "alice", "send", "bob", "after second restart")
        bob.wait_texts(8)
        assert bob.proc.poll() is None, "listen must survive restarts"
    assert bob.proc.returncode == 0
    got = [t[2] for t in texts(bob.lines())]
    assert got == ["before 1", "before 2"] + ["after %d" % i for i in range(5)] + [
        "after second restart"]
    # "reconnected" without "(new session)": the broker kept bob's session
    assert "new session" not in bob.errors()
    # the messages were published before bob was back, so they were queued
    assert queued, "bob reconnected before the sender published; nothing was queued"


def test_listen_stops_with_3_when_its_account_is_disabled(store, make_broker, datadir):
    """The plugin closes the connections of a disabled account; listen's
    reconnect is refused, and it stops with the credentials exit code
    instead of retrying for ever."""
    users(store, "alice", "bob")
    b = make_broker()
    with Listener(b, datadir, "bob", timeout=1) as bob:
        bob.wait_ready()
        store.set_enabled("bob", False)
        assert bob.wait_exit(timeout=15) == 3
        assert "Error: reconnect refused" in bob.errors()
