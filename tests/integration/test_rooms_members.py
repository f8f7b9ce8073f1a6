"""Rooms run by their members (docs/PROTOCOL.md, "Rooms run by their
members"): the room_* ops by the right people and no others, every refusal
with its code and nothing changed in the store, each change in force when
its answer comes, and the membership events the archiver publishes on
chat/room/<room>/archiver, live and in history."""
import json
import time

import harness
from archiver_util import Rpc, arch_env  # noqa: F401 (a fixture)
from archiver_util import rpc_fails as fails, rpc_ok as call_ok
from cli_util import EXISTS, cli, ok
from plugin_util import subscribe_ok

ROOM_EVENT = "chat/room/%s/archiver"


def members(store, room):
    return sorted(u for (u,) in store.sql("SELECT user FROM members WHERE room=?", room))


def snapshot(store):
    """Everything a refusal must leave as it was."""
    return [store.sql("SELECT * FROM %s ORDER BY 1, 2" % t) for t in
            ("rooms", "members", "room_meta", "room_admins", "rooms_retired")]


class Person(Rpc):
    """A connected user and their RPC channel, which keeps (in order) the
    messages that arrive while it waits for an answer: a membership event
    comes just before the answer of the change."""

    def __init__(self, env, name):
        self.kept = []
        super().__init__(env.user(name, client_id=name + "@phone"), name)

    def wait(self, want, timeout=harness.DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            m = self.c.get(max(0.05, deadline - time.monotonic()))
            if m.topic != "chat/rpc/%s/resp" % self.user:
                self.kept.append(m)
                continue
            ans = json.loads(m.payload)
            if ans.get("id") == want:
                return ans

    def next(self, timeout=5.0):
        return self.kept.pop(0) if self.kept else self.c.get(timeout)

    def expect_none(self):
        assert not self.kept, self.kept[0].topic
        self.c.expect_none()


def events(p, n, timeout=5.0):
    """The next n membership events p receives (other messages skipped)."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        left = deadline - time.monotonic()
        assert left > 0, "%s: %d of %d events: %r" % (p.user, len(out), n, out)
        try:
            m = p.next(left)
        except AssertionError:
            continue
        pl = json.loads(m.payload) if m.payload and m.topic.startswith("chat/room/") else {}
        if pl.get("type") == "event":
            assert m.topic.endswith("/archiver"), m.topic
            out.append((m.topic.split("/")[2], pl["event"], pl.get("user"), pl.get("by")))
    return out


def people(env, *names):
    return [Person(env, n) for n in names]


def test_create_add_promote_set_info(arch_env):
    env = arch_env(users=("alice", "bob", "carol"))
    alice, bob = people(env, "alice", "bob")
    env.store.set_privacy("bob", room_adds="everyone")
    env.store.set_privacy("carol", room_adds="everyone")
    ans = call_ok(alice, "room_create", room="hikers", title="Hikers", description="Sundays")
    assert ans["room"] == "hikers"
    # In force at the answer: alice subscribes at once.
    subscribe_ok(alice.c, "chat/room/hikers/#")
    call_ok(alice, "room_add", room="hikers", user="bob")
    assert events(alice, 1) == [("hikers", "added", "bob", "alice")]
    # bob may subscribe and publish at once.
    subscribe_ok(bob.c, "chat/room/hikers/#")
    bob.c.publish("chat/room/hikers/bob", harness.envelope("hi all", id="b1"))
    m = alice.next()
    assert m.topic == "chat/room/hikers/bob", m.topic
    call_ok(alice, "room_promote", room="hikers", user="bob")
    assert events(bob, 1) == [("hikers", "promoted", "bob", "alice")]
    # An admin adds, sets the title.
    call_ok(bob, "room_add", room="hikers", user="carol")
    call_ok(bob, "room_set", room="hikers", title="Hikers 2026")
    assert events(alice, 3)[1:] == [("hikers", "added", "carol", "bob"),
                                    ("hikers", "changed", "bob", "bob")]
    info = call_ok(bob, "room_info", room="hikers")
    assert (info["title"], info["description"], info["owner"]) == ("Hikers 2026", "Sundays", "alice")
    assert isinstance(info["created"], int)
    assert info["members"] == [{"user": "alice", "role": "owner"}, {"user": "bob", "role": "admin"},
                               {"user": "carol", "role": "member"}]
    rooms = call_ok(bob, "rooms")["rooms"]
    assert [(r["room"], r["title"], r["role"], r["members"]) for r in rooms] == [
        ("hikers", "Hikers 2026", "admin", ["alice", "bob", "carol"])]
    call_ok(alice, "room_demote", room="hikers", user="bob")
    assert call_ok(bob, "rooms")["rooms"][0]["role"] == "member"
    # The events are archived like any room message, in the event form.
    env.wait_rows(6)
    hist = call_ok(bob, "history", room="hikers", limit=100)["messages"]
    evs = [(m["event"], m.get("user"), m.get("by")) for m in hist if m["type"] == "event"]
    assert evs[::-1] == [("created", "alice", "alice"), ("added", "bob", "alice"),
                         ("promoted", "bob", "alice"), ("added", "carol", "bob"),
                         ("changed", "bob", "bob"), ("demoted", "bob", "alice")], evs
    ev = [m for m in hist if m["type"] == "event"][0]
    assert "body" not in ev and ev["from"] == "archiver" and ev["room"] == "hikers", ev
    got = call_ok(bob, "get", seq=ev["seq"])
    assert (got["type"], got["event"], got["user"]) == ("event", "demoted", "bob"), got
    sync = call_ok(bob, "sync")["messages"]
    assert sum(1 for m in sync if m["type"] == "event") == 6


def test_refusals_change_nothing(arch_env):
    env = arch_env(users=("alice", "bob", "carol", "dave", "erin"))
    alice, bob, carol = people(env, "alice", "bob", "carol")
    env.store.set_privacy("bob", room_adds="everyone")
    env.store.set_privacy("dave", room_adds="everyone")
    call_ok(alice, "room_create", room="team", title="Team")
    call_ok(alice, "room_add", room="team", user="bob")
    call_ok(alice, "room_add", room="team", user="dave")
    call_ok(alice, "room_create", room="other")
    before = snapshot(env.store)
    long_title = "x" * 101
    for rpc, code, op, args in [
            (alice, "bad_request", "room_create", {"room": "Bad Name"}),
            (alice, "bad_request", "room_create", {"room": "r2", "title": long_title}),
            (alice, "bad_request", "room_create", {"room": "r2", "description": "a\u0001b"}),
            (alice, "bad_request", "room_create", {}),
            (alice, "exists", "room_create", {"room": "team"}),
            (alice, "bad_request", "room_add", {"room": "team"}),
            (alice, "bad_request", "room_add", {"room": "team", "user": "Bob!"}),
            (alice, "not_found", "room_add", {"room": "team", "user": "zed"}),
            (carol, "not_found", "room_add", {"room": "team", "user": "carol"}),   # not in it
            (carol, "not_found", "room_info", {"room": "team"}),
            (carol, "not_found", "room_info", {"room": "nowhere"}),
            (bob, "forbidden", "room_add", {"room": "team", "user": "erin"}),     # a member only
            (bob, "forbidden", "room_remove", {"room": "team", "user": "dave"}),
            (bob, "forbidden", "room_promote", {"room": "team", "user": "dave"}),
            (bob, "forbidden", "room_demote", {"room": "team", "user": "dave"}),
            (bob, "forbidden", "room_set", {"room": "team", "title": "Mine"}),
            (bob, "forbidden", "room_delete", {"room": "team"}),
            (alice, "forbidden", "room_add", {"room": "team", "user": "erin"}),     # room_adds: contacts
            (alice, "not_member", "room_remove", {"room": "team", "user": "carol"}),
            (alice, "not_member", "room_promote", {"room": "team", "user": "carol"}),
            (alice, "not_member", "room_demote", {"room": "team", "user": "carol"}),
            (alice, "forbidden", "room_remove", {"room": "team", "user": "alice"}),
            (alice, "forbidden", "room_demote", {"room": "team", "user": "alice"}),
            (alice, "bad_request", "room_set", {"room": "team"}),
            (alice, "bad_request", "room_set", {"room": "team", "title": 5}),
            (carol, "not_found", "room_leave", {"room": "team"})]:
        fails(rpc, code, op, **args)
        assert snapshot(env.store) == before, (op, args)
    # The owner cannot be removed or demoted by an admin either.
    call_ok(alice, "room_promote", room="team", user="bob")
    fails(bob, "forbidden", "room_remove", room="team", user="alice")
    fails(bob, "forbidden", "room_demote", room="team", user="alice")
    assert members(env.store, "team") == ["alice", "bob", "dave"]


def test_removed_gets_nothing_more_and_leaving(arch_env):
    env = arch_env(users=("alice", "bob", "carol"))
    alice, bob, carol = people(env, "alice", "bob", "carol")
    for u in ("bob", "carol"):
        env.store.set_privacy(u, room_adds="everyone")
    call_ok(alice, "room_create", room="club")
    call_ok(alice, "room_add", room="club", user="bob")
    call_ok(alice, "room_add", room="club", user="carol")
    call_ok(alice, "room_promote", room="club", user="carol")
    for c in (alice, bob, carol):
        subscribe_ok(c.c, "chat/room/club/#")
    call_ok(alice, "room_remove", room="club", user="bob")
    # In force at the answer: bob receives neither the event nor what follows.
    alice.c.publish("chat/room/club/alice", harness.envelope("after", id="a-after"))
    assert events(carol, 1) == [("club", "removed", "bob", "alice")]
    m = carol.next()
    assert m.topic == "chat/room/club/alice"
    bob.expect_none()
    assert members(env.store, "club") == ["alice", "carol"]
    # The owner leaves: carol (the longest-standing admin) takes over.
    call_ok(alice, "room_leave", room="club")
    assert events(carol, 2) == [("club", "left", "alice", "alice"), ("club", "promoted", "carol", "alice")]
    info = call_ok(carol, "room_info", room="club")
    assert info["owner"] == "carol" and info["members"] == [{"user": "carol", "role": "owner"}]
    fails(alice, "not_found", "room_info", room="club")
    # The last member leaves: the room is deleted; its name is retired.
    call_ok(carol, "room_leave", room="club")
    assert events(carol, 1) == [("club", "deleted", "carol", "carol")]
    assert env.store.sql("SELECT name FROM rooms WHERE name='club'") == []
    assert env.store.sql("SELECT name FROM rooms_retired") == [("club",)]
    fails(carol, "exists", "room_create", room="club")
    r = cli(env.datadir, "room", "create", "club")
    assert r.rc == EXISTS and "retired" in r.err, r


def test_delete_reaches_members(arch_env):
    env = arch_env(users=("alice", "bob"))
    alice, bob = people(env, "alice", "bob")
    env.store.set_privacy("bob", room_adds="everyone")
    call_ok(alice, "room_create", room="tmp")
    call_ok(alice, "room_add", room="tmp", user="bob")
    call_ok(alice, "room_promote", room="tmp", user="bob")
    subscribe_ok(alice.c, "chat/room/tmp/#")
    call_ok(bob, "room_delete", room="tmp")
    assert events(alice, 1) == [("tmp", "deleted", "bob", "bob")]
    assert env.store.sql("SELECT count(*) FROM room_meta") == [(0,)]
    assert env.store.sql("SELECT count(*) FROM members") == [(0,)]
    fails(alice, "not_found", "room_info", room="tmp")


def test_limits_and_settings(arch_env):
    env = arch_env(users=("alice", "bob", "carol"))
    alice, = people(env, "alice")
    for u in ("bob", "carol"):
        env.store.set_privacy(u, room_adds="everyone")
    ok(env.datadir, "settings", "set", "rooms_per_owner", "1")
    call_ok(alice, "room_create", room="one")
    before = snapshot(env.store)
    fails(alice, "too_many_rooms", "room_create", room="two")
    ok(env.datadir, "settings", "set", "room_members_max", "2")
    call_ok(alice, "room_add", room="one", user="bob")
    fails(alice, "room_full", "room_add", room="one", user="carol")
    assert members(env.store, "one") == ["alice", "bob"]
    ok(env.datadir, "settings", "unset", "rooms_per_owner")
    ok(env.datadir, "settings", "set", "room_create", "nobody")
    before = snapshot(env.store)
    fails(alice, "forbidden", "room_create", room="three")
    assert snapshot(env.store) == before
    ok(env.datadir, "settings", "set", "room_create", "everyone")
    call_ok(alice, "room_create", room="three")


def test_room_adds_privacy(arch_env):
    env = arch_env(users=("alice", "bob", "carol", "dave"), rooms={"old": ("alice", "carol")})
    alice, = people(env, "alice")
    call_ok(alice, "room_create", room="new")
    # contacts (the default): carol shares a room with alice; bob does not.
    call_ok(alice, "room_add", room="new", user="carol")
    fails(alice, "forbidden", "room_add", room="new", user="bob")
    # bob adds alice to his contacts: then she may add him.
    env.store.add_contact("bob", "alice")
    call_ok(alice, "room_add", room="new", user="bob")
    # nobody: not even a contact; everyone: anyone.
    env.store.add_contact("dave", "alice")
    env.store.set_privacy("dave", room_adds="nobody")
    fails(alice, "forbidden", "room_add", room="new", user="dave")
    env.store.set_privacy("dave", room_adds="everyone")
    env.store.remove_contact("dave", "alice")
    call_ok(alice, "room_add", room="new", user="dave")
    assert members(env.store, "new") == ["alice", "bob", "carol", "dave"]


def test_only_a_service_publishes_events(arch_env):
    env = arch_env(users=("alice", "bob"), rooms={"hall": ("alice", "bob")})
    alice, bob = people(env, "alice", "bob")
    subscribe_ok(bob.c, "chat/room/hall/#")
    subscribe_ok(alice.c, "chat/notice/alice")
    fake = json.dumps({"id": "fake1", "type": "event", "event": "added", "user": "bob", "by": "alice"})
    alice.c.publish("chat/room/hall/alice", fake)
    m = alice.next()
    assert m.topic == "chat/notice/alice" and json.loads(m.payload)["code"] == "invalid_envelope", m
    bob.expect_none()


def test_operators_changes_are_archived_events(arch_env):
    """The CLI does not talk to the broker: an operator's changes are
    archived as events without "by", returned by history and sync, not
    sent live."""
    env = arch_env(users=("alice", "bob"))
    alice, = people(env, "alice")
    assert ok(env.datadir, "room", "create", "ops").err == ""
    assert ok(env.datadir, "room", "add", "ops", "alice", "bob").err == ""
    assert ok(env.datadir, "room", "remove", "ops", "bob").err == ""
    hist = call_ok(alice, "history", room="ops")["messages"]
    assert [(m["from"], m["event"], m.get("user"), "by" in m) for m in hist[::-1]] == [
        ("archiver", "created", None, False), ("archiver", "joined", "alice", False),
        ("archiver", "joined", "bob", False), ("archiver", "removed", "bob", False)], hist
