"""Live changes to the user store take effect within a second, without a
broker restart: new users, passwords, disabling and deleting (with kicks),
room membership and blocks (checked again at delivery)."""
import time

import pytest

from plugin_util import (PROTOCOLS, RELOAD_BOUND, Sync, assert_denied_publish, assert_refused,
                         connect, envelope, expect_msg, expect_none, inbox, login, publish,
                         room, subscribe_ok, wait_disconnected, wait_login)

PW = "password-xxxx"


@pytest.fixture
def live(store, make_broker, clients):
    """alice, bob, carol and a watcher (for reload barriers); room r1 =
    alice, bob, carol. Returns (broker, sync)."""
    for name in ("alice", "bob", "carol", "watcher"):
        store.add_user(name)
    store.add_room("r1", members=["alice", "bob", "carol"])
    b = make_broker()
    w = login(clients, b, "watcher", PW)
    return b, Sync(store, w)


def test_user_added_can_log_in(store, live, clients):
    b, sync = live
    _, code = connect(clients, b, "zed", "zed-password")
    assert_refused(code, False, "zed before being added")
    store.add_user("zed", password="zed-password")
    took = sync()
    login(clients, b, "zed", "zed-password").close()
    assert took < RELOAD_BOUND, "a new user was loaded only after %.2fs" % took


def test_user_added_polling_login(store, live, clients):
    """The same seen from a client that just retries until it gets in."""
    b, _ = live
    store.add_user("yan", password="yan-password")
    _, took = wait_login(clients, b, "yan", "yan-password")
    assert took < RELOAD_BOUND, "a new user could log in only after %.2fs" % took


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_password_change(store, live, clients, v5):
    b, sync = live
    login(clients, b, "alice", PW, v5=v5).close()      # old password verified (and cached)
    store.set_password("alice", "new-password-1")
    took = sync()
    _, code = connect(clients, b, "alice", PW, v5=v5)
    assert_refused(code, v5, "alice's old password after a change (reload took %.2fs)" % took)
    login(clients, b, "alice", "new-password-1", v5=v5).close()
    # And back: the cache must not keep the second password alive either.
    store.set_password("alice", PW)
    sync()
    _, code = connect(clients, b, "alice", "new-password-1", v5=v5)
    assert_refused(code, v5, "alice's previous password after changing it back")
    login(clients, b, "alice", PW, v5=v5).close()


@pytest.mark.parametrize("how", ["disabled", "deleted"])
@pytest.mark.parametrize("v5", PROTOCOLS)
def test_disabled_or_deleted_user_is_kicked(store, live, clients, v5, how):
    b, _ = live
    devices = [login(clients, b, "alice", PW, client_id=cid, v5=v5)
               for cid in ("alice", "alice@phone", "alice@laptop")]
    bob = login(clients, b, "bob", PW, v5=v5)
    t0 = time.monotonic()
    if how == "disabled":
        store.set_enabled("alice", False)
    else:
        store.delete_user("alice")
    for d in devices:
        wait_disconnected(d, RELOAD_BOUND, "alice was %s" % how)
    took = time.monotonic() - t0
    assert took < RELOAD_BOUND, "kicks took %.2fs" % took
    _, code = connect(clients, b, "alice", PW, v5=v5)
    assert_refused(code, v5, "alice logging in again after being %s" % how)
    assert not bob.disconnected.is_set(), "bob was kicked along with alice"
    # Nobody can write to her inbox any more either.
    code = publish(bob, inbox("alice", "bob"), envelope("to a %s user" % how))
    assert_denied_publish(bob, code, "inbox of a %s user" % how)


def test_disabled_user_persistent_session_gets_nothing(store, live, clients):
    """A persistent session survives a kick: the ACL must deny delivery too."""
    b, sync = live
    alice = login(clients, b, "alice", PW, clean=False)
    subscribe_ok(alice, "chat/inbox/alice/#")
    subscribe_ok(alice, "chat/room/r1/#")
    alice.close()
    store.set_enabled("alice", False)
    sync()
    bob = login(clients, b, "bob", PW)
    bob.publish(room("r1", "bob"), envelope("room while alice is disabled"))
    bob.publish(inbox("alice", "bob"), envelope("inbox while alice is disabled"))
    store.set_enabled("alice", True)
    sync()
    back = login(clients, b, "alice", PW, clean=False)
    expect_none(back)


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_removed_from_room(store, live, clients, v5):
    b, sync = live
    alice = login(clients, b, "alice", PW, v5=v5)
    bob = login(clients, b, "bob", PW, v5=v5)
    carol = login(clients, b, "carol", PW, v5=v5)
    subscribe_ok(bob, "chat/room/r1/#")
    subscribe_ok(carol, "chat/room/r1/#")
    m0 = envelope("before")
    alice.publish(room("r1", "alice"), m0)
    expect_msg(bob, room("r1", "alice"), m0)
    expect_msg(carol, room("r1", "alice"), m0)

    store.remove_member("r1", "bob")
    took = sync()
    m1 = envelope("after bob left")
    alice.publish(room("r1", "alice"), m1)
    expect_msg(carol, room("r1", "alice"), m1)
    expect_none(bob)
    code = publish(bob, room("r1", "bob"), envelope("bob after leaving"))
    assert_denied_publish(bob, code, "room r1 after bob was removed")
    expect_none(carol)
    assert bob.subscribe("chat/room/r1/#") >= 0x80, "bob can subscribe to r1 after removal"
    assert took < RELOAD_BOUND


def test_removed_from_room_queued_messages_not_delivered(store, live, clients):
    """Messages queued for bob's offline session are checked again when they
    are delivered: after his removal he gets none of them."""
    b, sync = live
    bob = login(clients, b, "bob", PW, clean=False)
    subscribe_ok(bob, "chat/room/r1/#")
    bob.close()
    alice = login(clients, b, "alice", PW)
    alice.publish(room("r1", "alice"), envelope("queued while bob is away"))
    store.remove_member("r1", "bob")
    sync()
    bob = login(clients, b, "bob", PW, clean=False)
    expect_none(bob)


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_block_and_unblock(store, live, clients, v5):
    b, sync = live
    alice = login(clients, b, "alice", PW, v5=v5)
    bob = login(clients, b, "bob", PW, v5=v5)
    subscribe_ok(bob, "chat/inbox/bob/#")
    m0 = envelope("before block")
    alice.publish(inbox("bob", "alice"), m0)
    expect_msg(bob, inbox("bob", "alice"), m0)

    store.block("bob", "alice")
    sync()
    code = publish(alice, inbox("bob", "alice"), envelope("while blocked"))
    assert_denied_publish(alice, code, "bob's inbox while he blocks alice")
    expect_none(bob)
    # carol is not blocked.
    carol = login(clients, b, "carol", PW, v5=v5)
    m1 = envelope("carol is fine")
    carol.publish(inbox("bob", "carol"), m1)
    expect_msg(bob, inbox("bob", "carol"), m1)

    store.unblock("bob", "alice")
    sync()
    m2 = envelope("after unblock")
    assert publish(alice, inbox("bob", "alice"), m2) == 0
    expect_msg(bob, inbox("bob", "alice"), m2)
    expect_none(bob)


def test_block_applies_to_queued_messages(store, live, clients):
    b, sync = live
    bob = login(clients, b, "bob", PW, clean=False)
    subscribe_ok(bob, "chat/inbox/bob/#")
    bob.close()
    alice = login(clients, b, "alice", PW)
    alice.publish(inbox("bob", "alice"), envelope("queued before the block"))
    store.block("bob", "alice")
    sync()
    bob = login(clients, b, "bob", PW, clean=False)
    expect_none(bob)


def test_room_deleted_and_added(store, live, clients):
    b, sync = live
    alice = login(clients, b, "alice", PW)
    bob = login(clients, b, "bob", PW)
    assert bob.subscribe("chat/room/r9/#") >= 0x80, "bob may subscribe to a room that does not exist"
    store.add_room("r9", members=["alice", "bob"])
    sync()
    subscribe_ok(bob, "chat/room/r9/#")
    m = envelope("new room")
    alice.publish(room("r9", "alice"), m)
    expect_msg(bob, room("r9", "alice"), m)
    store.delete_room("r9")
    sync()
    alice.publish(room("r9", "alice"), envelope("deleted room"))
    expect_none(bob)
