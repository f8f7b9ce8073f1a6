"""test_web_resync.py - the web app syncs what it may have missed
(docs/PROTOCOL.md, "Several nodes"): after a CONNACK without its session
(the broker killed and back without its saved state, as a node replaced by
another) and on a resync notice from a service, it syncs from the largest
seq it holds, and shows every message once, in seq order.

Its own stack (the broker is killed), shared with nobody.
"""
import json
import os
import signal
import time
import uuid

import harness
from web_util import PASSWORD, T, driver, people, stack_fixture  # noqa: F401 (fixtures)

web_env = stack_fixture(users=["uma", "vic", "wes", "xia"],
                        rooms={"late1": ["vic"], "late2": ["vic"], "late3": ["vic"]})


def conv(key):
    return ".conv[data-conv=%s]" % json.dumps(key)


def client(web_env, user, name="probe"):
    """A plain MQTT client as user@name, connected."""
    c = harness.Client(web_env.broker.port, user, PASSWORD, client_id="%s@%s" % (user, name))
    assert c.connect() == 0
    return c


def say(c, to, body, room=None):
    """Publish a text as c's user to to's inbox or to room (QoS 1, PUBACK
    awaited)."""
    me = c.client_id.split("@")[0]
    topic = "chat/room/%s/%s" % (room, me) if room else "chat/inbox/%s/%s" % (to, me)
    c.publish(topic, harness.envelope(body))


def archived(web_env, *bodies):
    def have():
        got = [r[0] for r in web_env.rows("SELECT body FROM messages WHERE type='text'")]
        return all(b in got for b in bodies)
    harness.wait_for(have, T, interval=0.05, what="%r in the archive" % (bodies,))


def archiver_answers(web_env, user):
    """Until the archiver answers an RPC of user (connected and subscribed)."""
    c = client(web_env, user, name="rpc")
    try:
        assert c.subscribe("chat/rpc/%s/resp" % user) < 0x80

        def answered():
            c.publish("chat/rpc/%s/req" % user, json.dumps({"id": uuid.uuid4().hex, "op": "hello"}))
            try:
                return c.messages.get(timeout=0.5)
            except Exception:
                return None
        harness.wait_for(answered, T, interval=0.1, what="the archiver to answer %s" % user)
    finally:
        c.close()


def rpc(web_env, user, op):
    """The archiver's answer to {"op": op} of user (the page's answers,
    which come on the same topic, left aside)."""
    c = client(web_env, user, name="rpc")
    rid = uuid.uuid4().hex
    try:
        assert c.subscribe("chat/rpc/%s/resp" % user) < 0x80
        c.publish("chat/rpc/%s/req" % user, json.dumps({"id": rid, "op": op}))

        def mine():
            a = json.loads(c.messages.get(timeout=T).payload)
            return a if a.get("id") == rid else None
        return harness.wait_for(mine, T, what="the answer to %s" % op)
    finally:
        c.close()


def test_a_connack_without_the_session_brings_what_was_missed_once(web_env, people):
    people.allow(r"WebSocket connection to 'ws://127\.0\.0\.1:%d/.*' failed" % web_env.ws_port)
    people.allow(r"WebSocket .*(closed|failed|ERR_CONNECTION_REFUSED|ERR_INTERNET_DISCONNECTED)")
    uma = people.login("uma")
    uma.open_conv("u:vic")
    vic = client(web_env, "vic")
    try:
        say(vic, "uma", "before the crash")
        uma.wait_body("before the crash")
    finally:
        vic.close()
    # Off the network, the page sees nothing until the broker is back;
    # then the broker has no session for it (SIGKILL skips the save, and
    # the saved state is gone as on a new node), and what vic sends
    # meanwhile is only in the archive.
    uma.offline(offline=True)
    try:
        uma.wait_fn("document.querySelector('#status').dataset.state !== 'online'")
        web_env.broker.stop(sig=signal.SIGKILL)
        db = os.path.join(web_env.datadir, "mosquitto.db")
        if os.path.exists(db):
            os.unlink(db)
        web_env.broker.start()
        web_env.wait_ws()
        archiver_answers(web_env, "vic")
        vic = client(web_env, "vic")
        try:
            say(vic, "uma", "while away 1")
            say(vic, "uma", "while away 2")
        finally:
            vic.close()
        archived(web_env, "while away 1", "while away 2")
    finally:
        uma.offline(offline=False)
    uma.wait_online(timeout=40)   # the app's backoff is at most 15 s
    uma.wait_body("while away 2")
    vic = client(web_env, "vic")
    try:
        say(vic, "uma", "after the crash")
    finally:
        vic.close()
    uma.wait_bodies(["before the crash", "while away 1", "while away 2", "after the crash"])
    people.shot(uma, "resync-new-session")


def test_a_resync_notice_brings_what_was_missed_once(web_env, people):
    wes = people.login("wes")
    wes.open_conv("u:vic")
    vic = client(web_env, "vic")
    try:
        say(vic, "wes", "direct, live")
        wes.wait_body("direct, live")
        # Wes is added to a room after the page subscribed to his: what
        # is said there never reaches the page live, as a message lost on
        # its way. The page looks for new rooms every 30 s: if it happened
        # to look in between, another room.
        for room in ("late1", "late2", "late3"):
            web_env.store.add_member(room, "wes")
            harness.wait_for(lambda: room in [r.get("room") for r in rpc(web_env, "wes", "rooms")["rooms"]],
                             T, interval=0.1, what="wes in room %s" % room)
            say(vic, None, "said in %s" % room, room=room)
            archived(web_env, "said in %s" % room)
            if wes.count(conv("r:" + room)) == 0:
                break
        else:
            raise AssertionError("the page learned of each room before the notice")
    finally:
        vic.close()

    svc = harness.Client(web_env.broker.port, "archiver", web_env.pw, client_id="archiver@resync")
    try:
        assert svc.connect() == 0
        svc.publish("chat/notice/wes", json.dumps({"type": "resync", "ts": int(time.time() * 1000)}))
    finally:
        svc.close()
    wes.wait_text(conv("r:" + room) + " .conv-last", "said in %s" % room)
    people.shot(wes, "resync-notice")
    # The direct message came again in the sync: shown once.
    wes.wait_bodies(["direct, live"])
    wes.open_conv("r:" + room)
    wes.wait_bodies(["said in %s" % room])
