"""Privacy of presence (docs/PROTOCOL.md, "Privacy"): chat/presence/<name>
reaches only those <name> shows it to: their contacts by default (people
who share a room with them, and whom they added or wrote to), everyone,
or nobody; themselves always. A subscription to chat/presence/+ lists
only those."""
import time

import pytest

import harness
from archiver_util import Rpc, arch_env, publish_many  # noqa: F401 (a fixture)
from archiver_util import rpc_fails as fails
from plugin_util import Sync, expect_none, get, login, presence, presence_of, subscribe_ok

PW = "password-xxxx"


@pytest.fixture
def priv(store, make_broker):
    for name in ("alice", "bob", "carol", "dave"):
        store.add_user(name)
    store.add_room("team", ("alice", "bob"))
    return make_broker()


def seen(c, seconds=1.0):
    """{name: status} of every presence delivered to c within seconds."""
    out = {}
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return out
        try:
            m = get(c, left, "presence")
        except AssertionError:
            return out
        if m.topic.startswith(presence("")) and m.payload:
            out[m.topic[len(presence("")):]] = presence_of(m)["status"]


def online(clients, b, *names):
    return [login(clients, b, n, PW, client_id=n + "@phone") for n in names]


def watcher(clients, b, name):
    c = login(clients, b, name, PW, client_id=name + "@watch")
    subscribe_ok(c, presence("+"))
    return c


def test_only_contacts_see_presence(priv, clients):
    online(clients, priv, "alice", "bob", "carol")
    # bob shares a room with alice: he sees her, and himself; not carol.
    bob = watcher(clients, priv, "bob")
    got = seen(bob)
    assert got.get("alice") == "online" and got.get("bob") == "online", got
    assert "carol" not in got and "dave" not in got, "bob saw presence he may not: %r" % got
    # dave shares nothing: only himself, and nothing about the others
    # arrives later either.
    dave = watcher(clients, priv, "dave")
    assert set(seen(dave)) == {"dave"}
    login(clients, priv, "carol", PW, client_id="carol@laptop").close()
    expect_none(dave)


def test_a_contact_sees_and_stops_seeing(priv, store, clients):
    carol, = online(clients, priv, "carol")
    dave = watcher(clients, priv, "dave")
    assert "carol" not in seen(dave, 0.5)
    # carol adds dave: from the next change on (and on subscribing again)
    # dave sees her.
    store.add_contact("carol", "dave")
    Sync(store, dave)()
    dave.c.unsubscribe(presence("+"))
    subscribe_ok(dave, presence("+"))
    assert seen(dave).get("carol") == "online"
    carol.close()
    assert seen(dave).get("carol") == "offline"
    # ... and removes him: nothing more.
    store.remove_contact("carol", "dave")
    Sync(store, dave)()
    login(clients, priv, "carol", PW, client_id="carol@phone")
    assert "carol" not in seen(dave)


def test_everyone_and_nobody(priv, store, clients):
    alice, = online(clients, priv, "alice")
    store.set_privacy("carol", presence="everyone")
    store.set_privacy("alice", presence="nobody")
    dave = watcher(clients, priv, "dave")
    Sync(store, dave)()
    online(clients, priv, "carol")
    got = seen(dave)
    assert got.get("carol") == "online", "carol shows herself to everyone: %r" % got
    # alice shows herself to nobody: not even to bob, who shares a room
    # with her; she still sees herself.
    bob = watcher(clients, priv, "bob")
    assert "alice" not in seen(bob)
    me = watcher(clients, priv, "alice")
    assert seen(me).get("alice") == "online"


def test_refused_deliveries_are_not_logged(priv, clients):
    online(clients, priv, "alice", "bob", "carol")
    dave = watcher(clients, priv, "dave")
    assert set(seen(dave)) == {"dave"}
    log = priv.output()
    assert "denied delivery" not in log, "a privacy refusal was logged: %s" % log[-2000:]


def contacts(store):
    return sorted(store.sql("SELECT user, contact FROM contacts"))


def test_writing_to_someone_makes_you_their_contact(arch_env):
    """The archiver records, as it stores a direct message, that its
    recipient may see its sender: dave writes to alice, so alice sees
    dave; room messages and receipts make nobody a contact."""
    env = arch_env(users=("alice", "dave", "erin"), rooms={"hall": ("dave", "erin")})
    alice, dave = env.user("alice", client_id="alice@phone"), env.user("dave", client_id="dave@phone")
    subscribe_ok(alice, presence("+"))
    assert "dave" not in seen(alice, 0.5)
    publish_many(dave, "chat/inbox/alice/dave", 3)
    publish_many(dave, "chat/room/hall/dave", 2, prefix="h")
    publish_many(alice, "chat/inbox/dave/alice", 1, prefix="r")
    env.wait_rows(6)
    harness.wait_for(lambda: contacts(env.store) == [("alice", "dave"), ("dave", "alice")], 5,
                     what="the two direct-message contacts")
    Sync(env.store, alice)()
    alice.c.unsubscribe(presence("+"))
    subscribe_ok(alice, presence("+"))
    assert seen(alice).get("dave") == "online"
    # One row per pair, however many messages: a restart of the archiver
    # does not add them twice either.
    env.arch.stop()
    env.arch.start()
    publish_many(dave, "chat/inbox/alice/dave", 2, prefix="again")
    env.wait_rows(8)
    assert contacts(env.store) == [("alice", "dave"), ("dave", "alice")]


def test_privacy_ops(arch_env):
    env = arch_env(users=("alice", "bob", "carol"), rooms={"team": ("alice", "bob")})
    alice, carol = env.user("alice", client_id="alice@phone"), env.user("carol", client_id="carol@phone")
    ra, rc = Rpc(alice, "alice"), Rpc(carol, "carol")

    ans = ra.call("privacy")
    assert (ans["ok"], ans["presence"], ans["room_adds"]) == (True, "contacts", "contacts")
    # Bad values change nothing.
    for bad in ({"presence": "friends"}, {"presence": 1}, {"room_adds": None}, {"room_adds": "Everyone"}):
        fails(ra, "bad_request", "privacy", **bad)
    assert ra.call("privacy")["presence"] == "contacts"
    assert env.store.sql("SELECT count(*) FROM privacy") == [(0,)]

    # whois: carol shares nothing with alice: alice is nobody to her.
    fails(rc, "not_found", "whois", user="alice")
    assert rc.call("whois", user="carol")["user"] == "carol"
    assert rc.call("whois", user="archiver")["kind"] == "service"   # shown to everyone
    assert ra.call("whois", user="bob")["user"] == "bob"            # a shared room
    ans = ra.call("privacy", presence="everyone")
    assert (ans["presence"], ans["room_adds"]) == ("everyone", "contacts")
    assert rc.call("whois", user="alice")["user"] == "alice"
    ans = ra.call("privacy", presence="nobody", room_adds="nobody")
    assert (ans["presence"], ans["room_adds"]) == ("nobody", "nobody")
    fails(rc, "not_found", "whois", user="alice")
    # Even bob, in her room, no longer gets her presence: in force with
    # the answer.
    bob = env.user("bob", client_id="bob@phone")
    subscribe_ok(bob, presence("alice"))
    assert "alice" not in seen(bob, 0.5)
    ra.call("privacy", presence="contacts")

    # Contacts: alice adds carol, who then sees her at once.
    fails(ra, "bad_request", "contact_add", user="alice")
    fails(ra, "bad_request", "contact_add", user="Carol")
    fails(ra, "bad_request", "contact_add")
    fails(ra, "not_found", "contact_add", user="zed")
    assert ra.call("contacts")["contacts"] == []
    assert ra.call("contact_add", user="carol")["ok"] is True
    assert ra.call("contact_add", user="carol")["ok"] is True     # twice: the same
    got = ra.call("contacts")["contacts"]
    assert [c["user"] for c in got] == ["carol"] and isinstance(got[0]["since"], int)
    assert rc.call("whois", user="alice")["user"] == "alice"
    subscribe_ok(carol, presence("alice"))
    assert seen(carol).get("alice") == "online"
    # One way: carol did not become visible to alice by it.
    fails(ra, "not_found", "whois", user="carol")
    assert ra.call("contact_remove", user="carol")["ok"] is True
    assert ra.call("contact_remove", user="carol")["ok"] is True
    fails(rc, "not_found", "whois", user="alice")
    assert ra.call("contacts")["contacts"] == []
