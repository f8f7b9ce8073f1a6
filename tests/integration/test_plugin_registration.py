"""The registration pseudo-user _register: answered "closed" by the plugin
when registration is off; with it on, it may only talk on its own chat/register/<clientid>/ topics and
is disconnected after register_timeout."""
import json
import time

import pytest

from plugin_util import (PROTOCOLS, assert_denied_publish, assert_refused, connect, envelope,
                         expect_msg, expect_none, login, publish, refused_sub_code,
                         subscribe_ok, wait_disconnected)

CID = "_register@k3J9-x_Q.z"        # 12 characters of device
OTHER = "_register@ZZZZZZZZZZ"


def req(user="newbie"):
    return json.dumps({"id": "q1", "user": user, "password": "newbie-password", "nick": "N"})


@pytest.mark.parametrize("v5", PROTOCOLS)
@pytest.mark.parametrize("mode", [None, "off"])
def test_register_closed_when_off(store, make_broker, clients, v5, mode):
    """Off is the default (mode None: the option is not given at all).
    _register still connects (for login_status), but the plugin itself
    answers every registration request "closed", and nothing reaches the
    archiver, whatever the archiver is set to."""
    store.add_user("archiver", kind="service")
    b = make_broker(registration=mode)
    svc = login(clients, b, "archiver", "password-xxxx", v5=v5)
    subscribe_ok(svc, "chat/register/+/req")
    for password in ("anything", ""):
        r = login(clients, b, "_register", password, client_id=CID, v5=v5)
        subscribe_ok(r, "chat/register/%s/resp" % CID)
        code = publish(r, "chat/register/%s/req" % CID, req())
        assert_denied_publish(r, code, "chat/register/%s/req" % CID)
        m = expect_msg(r, "chat/register/%s/resp" % CID)
        assert json.loads(m.payload) == {"id": "q1", "ok": False, "error": "closed",
                                         "message": "registration is closed"}
        r.close()
    expect_none(svc)


@pytest.fixture
def reg(store, make_broker):
    store.add_user("alice")
    store.add_user("archiver", kind="service")
    return make_broker(registration="open", plugin_opts={"register_timeout": 2})


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_register_flow_and_limits(reg, clients, v5):
    svc = login(clients, reg, "archiver", "password-xxxx", v5=v5)
    subscribe_ok(svc, "chat/register/+/req")
    alice = login(clients, reg, "alice", "password-xxxx", v5=v5)
    subscribe_ok(alice, "chat/inbox/alice/#")
    r = login(clients, reg, "_register", "any password at all", client_id=CID, v5=v5)
    other = login(clients, reg, "_register", "", client_id=OTHER, v5=v5)
    subscribe_ok(r, "chat/register/%s/resp" % CID)
    subscribe_ok(other, "chat/register/%s/resp" % OTHER)

    want = refused_sub_code(v5)
    subs = ["chat/register/%s/resp" % OTHER, "chat/register/%s/req" % CID, "chat/register/+/resp",
            "chat/register/#", "chat/#", "#", "chat/inbox/_register/#", "chat/inbox/alice/#",
            "chat/presence/+", "chat/presence/alice", "chat/rpc/_register/resp", "$SYS/#"]
    got = {t: r.subscribe(t) for t in subs}
    wrong = {t: "0x%02x" % g for t, g in got.items() if g != want}
    assert not wrong, "_register subscriptions that should get 0x%02x: %s" % (want, wrong)

    for topic in ("chat/register/%s/req" % OTHER, "chat/register/%s/resp" % CID,
                  "chat/inbox/alice/_register", "chat/rpc/_register/req",
                  "chat/presence/_register", "chat/register/%s/req/x" % CID):
        payload = envelope("x") if "inbox" in topic else req()
        code = publish(r, topic, payload)
        assert_denied_publish(r, code, "%s by %s" % (topic, CID))

    assert publish(r, "chat/register/%s/req" % CID, req()) == 0
    expect_msg(svc, "chat/register/%s/req" % CID, req())
    expect_none(svc)
    expect_none(alice)

    answer = json.dumps({"id": "q1", "ok": True})
    assert publish(svc, "chat/register/%s/resp" % CID, answer) == 0
    expect_msg(r, "chat/register/%s/resp" % CID, answer)
    expect_none(r)
    expect_none(other)


def test_register_timeout(reg, clients):
    t0 = time.monotonic()
    r = login(clients, reg, "_register", "x", client_id=CID)
    took = wait_disconnected(r, 5.0, "register_timeout of 2 s")
    took = time.monotonic() - t0
    assert took >= 1.5, "_register was disconnected after %.2fs, before its 2 s timeout" % took
    assert took <= 4.0, "_register was disconnected only after %.2fs (timeout 2 s)" % took


def test_ordinary_users_not_timed_out(reg, clients):
    alice = login(clients, reg, "alice", "password-xxxx")
    r = login(clients, reg, "_register", "x", client_id=CID)
    wait_disconnected(r, 5.0, "register_timeout of 2 s")
    expect_none(alice)
    assert not alice.disconnected.is_set(), "alice was disconnected along with _register"


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_register_client_ids(reg, clients, v5):
    for cid in ("_register@abcdefgh", "_register@" + "A1_-." * 12 + "abcd"):   # 8 and 64
        login(clients, reg, "_register", "x", client_id=cid, v5=v5).close()
    for why, cid in (("no device", "_register"), ("device of 5", "_register@short"),
                     ("device of 7", "_register@abcdefg"), ("device of 65", "_register@" + "a" * 65),
                     ("bad device chars", "_register@abc def gh"), ("empty device", "_register@"),
                     ("someone else's", "alice"), ("someone else's device", "alice@abcdefgh")):
        _, code = connect(clients, reg, "_register", "x", client_id=cid, v5=v5)
        assert_refused(code, v5, "_register with client id %s (%r)" % (why, cid))


def test_register_in_invite_mode(store, make_broker, clients):
    """invite mode: the connection is the same, the archiver checks the code."""
    b = make_broker(registration="invite")
    r = login(clients, b, "_register", "x", client_id=CID)
    subscribe_ok(r, "chat/register/%s/resp" % CID)
