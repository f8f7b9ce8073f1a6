"""A name is not an identity: the next holder of a deleted account's or
room's name sees nothing addressed to or sent by the previous one.

Each test performs the attack of issue 14 against a real broker, plugin and
archiver: xena has a persistent session (xena@phone) and conversations with
bob; `user del xena`; someone tries to become xena. While the name is
retired (30 days, the broker's persistent_client_expiration) nobody may take
it, by the CLI, by registration or with an invite. After it (simulated by
moving the retired row's `deleted` back 31 days, with fresh client ids: the
broker would have dropped the old sessions by then), the new xena's
history, sync and get answer nothing of the old one, her receipts cannot mark
the old one's messages, and bob still has his whole conversation. `user add
--restore` gives the same person her data back. A room deleted and created
again shows nobody its old history, and a member's receipt does not mark
a room message read for everyone."""
import json
import secrets
import time

import pytest

import harness
from archiver_util import DAY_MS, PASSWORD, Rpc, arch_env, inbox, room  # noqa: F401 (fixture)
from cli_util import EXISTS, NOTFOUND, fails, ok

NEW_PW = "another-secret-1"
NOT_AUTHORIZED = 5   # MQTT 3.1.1 CONNACK


def utc(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def text(mid, body=None):
    return json.dumps({"id": mid, "type": "text", "body": body or mid})


def receipt(ref, status="read", mid=None):
    return json.dumps({"id": mid or "r-" + secrets.token_hex(4), "type": "receipt", "ref": ref,
                       "status": status})


def cli_add(env, name, *extra, password=NEW_PW):
    return ok(env.datadir, "user", "add", name, "--password-stdin", *extra, stdin=password + "\n")


def register(env, **req):
    """One registration request on a fresh _register connection; the answer."""
    cid = "_register@" + secrets.token_hex(6)
    c = env.clients(env.broker, "_register", "x", client_id=cid)
    assert c.connect() == 0
    assert c.subscribe("chat/register/%s/resp" % cid) in (0, 1)
    req.setdefault("id", secrets.token_hex(4))
    c.publish("chat/register/%s/req" % cid, json.dumps(req))
    ans = json.loads(c.get().payload)
    c.close()
    assert ans["id"] == req["id"], ans
    return ans


def login_code(env, name, password, client_id):
    c = harness.Client(env.broker.port, name, password, client_id=client_id)
    c.c._reconnect_on_failure = False
    try:
        return c.connect()
    finally:
        c.close()


def status_of(env, sender, mid):
    return env.rows("SELECT status FROM messages WHERE sender=? AND id=? ORDER BY seq", sender, mid)


def ids(msgs):
    return [m["id"] for m in msgs]


def inbox_until(client, want):
    """The ids of what client receives, up to and including want (each
    wait bounded by client.get's timeout)."""
    got = []
    while want not in got:
        got.append(json.loads(client.get().payload)["id"])
    return got


def wait_chat(env, n):
    """env.wait_rows, of the archived messages that are not events."""
    q = "SELECT count(*) FROM messages WHERE type<>'event'"
    return harness.wait_for(lambda: env.rows(q)[0][0] >= n, what="%d archived messages" % n)


def chat(msgs):
    """Without the membership events of the operators' room changes (the
    CLI archives them): these tests are about messages."""
    return [m for m in msgs if m["type"] != "event"]


def history_all(rpc, **args):
    """Every message of a conversation, paging back to the start; newest
    first; events left out (chat)."""
    got, before = [], None
    while True:
        a = dict(args, limit=100)
        if before:
            a["before"] = before
        ans = rpc.call("history", **a)
        assert ans["ok"] is True, ans
        got += chat(ans["messages"])
        if not ans["more"]:
            return got
        before = ans["messages"][-1]["seq"]


def sync_all(rpc):
    got, after = [], 0
    while True:
        ans = rpc.call("sync", after=after, limit=500)
        assert ans["ok"] is True, ans
        got += chat(ans["messages"])
        if not ans["more"]:
            return got
        after = ans["messages"][-1]["seq"]


def old_xena(env):
    """xena (made with the CLI, as an operator would) leaves a persistent
    session with three DMs from bob queued in it, has sent bob one DM and
    written in room lab; everything is archived. Then `user del xena`.
    Returns (the seqs of her messages, her account's created)."""
    d = env.datadir
    cli_add(env, "xena", password=PASSWORD)
    created = env.store.sql("SELECT created FROM users WHERE name='xena'")[0][0]
    ok(d, "room", "add", "lab", "xena")
    xena = env.user("xena", client_id="xena@phone", clean=False)
    assert xena.subscribe("chat/inbox/xena/#") in (0, 1)
    xena.publish(inbox("bob", "xena"), text("x-1", "from the old xena"))
    xena.publish(room("lab", "xena"), text("x-2", "the old xena in lab"))
    xena.close()
    bob = env.user("bob", client_id="bob@old")
    for i in range(1, 4):
        bob.publish(inbox("xena", "bob"), text("b-%d" % i, "for the old xena %d" % i))
    bob.close()
    wait_chat(env, 5)
    seqs = [s for (s,) in env.rows("SELECT seq FROM messages WHERE type<>'event' ORDER BY seq")]
    assert ok(d, "user", "del", "xena").out == "user xena deleted\n"
    return seqs, created


@pytest.fixture
def world(arch_env):
    def make(registration="open"):
        return arch_env(registration=registration, users=["bob", "alice"],
                        rooms={"lab": ["bob", "alice"]})
    return make


def retired_message(env, name):
    deleted = env.store.sql("SELECT deleted FROM retired WHERE name=?", name)[0][0]
    return ("user '%s' was deleted on %s; the name is free again on %s (the broker may still hold"
            " messages queued for the deleted account until then); to give it back to the same"
            " person: `user add %s --restore`" % (name, utc(deleted), utc(deleted + 30 * DAY_MS), name))


@pytest.mark.parametrize("registration", ["open", "invite"])
def test_a_deleted_name_cannot_be_taken_while_retired(world, registration):
    env = world(registration)
    d = env.datadir
    seqs, created = old_xena(env)
    users_before = env.store.sql("SELECT * FROM users ORDER BY name")
    retired = env.store.sql("SELECT name, created, deleted FROM retired")
    assert [(n, c) for n, c, _ in retired] == [("xena", created)]
    assert 0 <= time.time() * 1000 - retired[0][2] < 60 * 1000

    # The CLI refuses, and says when the name was deleted and when it is free.
    r = fails(d, EXISTS, "user", "add", "xena", "--password-stdin", stdin=NEW_PW + "\n",
              err=retired_message(env, "xena"))
    assert r.err.count("\n") == 1, r
    fails(d, EXISTS, "user", "add", "xena", "--kind", "device", "--password-stdin",
          stdin=NEW_PW + "\n", err=retired_message(env, "xena"))

    # Registration answers exactly what it answers for a name in use.
    req = {"password": NEW_PW}
    if registration == "invite":
        code = ok(d, "invite", "create").out.strip()
        req["invite"] = code
    taken = register(env, user="bob", **req)
    retired_ans = register(env, user="xena", **req)
    assert taken["ok"] is False and taken["error"] == "taken"
    assert {k: v for k, v in retired_ans.items() if k != "id"} == {
        k: v for k, v in taken.items() if k != "id"}
    if registration == "invite":
        assert env.store.sql("SELECT uses_left FROM invites WHERE code=?", code) == [(1,)]

    # Nothing changed, nothing was lost, and nobody gets the queued messages:
    # there is no xena to log in as (her old password no longer works).
    assert env.store.sql("SELECT * FROM users ORDER BY name") == users_before
    assert env.store.sql("SELECT name, created, deleted FROM retired") == retired
    assert [s for (s,) in env.rows("SELECT seq FROM messages WHERE type<>'event' ORDER BY seq")] == seqs
    assert login_code(env, "xena", PASSWORD, "xena@phone") == NOT_AUTHORIZED
    assert login_code(env, "xena", NEW_PW, "xena@phone") == NOT_AUTHORIZED

    # --restore needs a deleted name; it never takes a name in use.
    fails(d, NOTFOUND, "user", "add", "nobody", "--restore", "--password-stdin",
          stdin=NEW_PW + "\n", err="no deleted user 'nobody' to restore")
    fails(d, EXISTS, "user", "add", "bob", "--restore", "--password-stdin",
          stdin=NEW_PW + "\n", err="user 'bob' already exists")
    assert env.store.sql("SELECT * FROM users ORDER BY name") == users_before


@pytest.mark.parametrize("how", ["cli", "registration"])
def test_the_next_holder_sees_nothing_of_the_previous_one(world, how):
    env = world()
    d = env.datadir
    seqs, created = old_xena(env)
    # 31 days later: the broker has dropped the old sessions (the test uses
    # new client ids), and the name is free.
    env.store.sql("UPDATE retired SET deleted = deleted - 31 * 86400000 WHERE name='xena'")
    if how == "cli":
        assert cli_add(env, "xena").out == "user xena added\n"
    else:
        ans = register(env, user="xena", password=NEW_PW)
        assert ans["ok"] is True, ans
    assert env.store.sql("SELECT name FROM retired") == []
    new_created = env.store.sql("SELECT created FROM users WHERE name='xena'")[0][0]
    assert new_created > created

    xena = env.user("xena", password=NEW_PW, client_id="xena@laptop", clean=False)
    assert xena.subscribe("chat/inbox/xena/#") in (0, 1)
    rpc = Rpc(xena, "xena")
    assert history_all(rpc, **{"with": "bob"}) == []
    assert sync_all(rpc) == []
    for s in seqs:
        ans = rpc.call("get", seq=s)
        assert ans["ok"] is False and ans["error"] == "not_found", (s, ans)

    # Her receipts cannot mark what was sent to the old xena.
    bob = env.user("bob", client_id="bob@desk")
    assert bob.subscribe("chat/inbox/bob/#") in (0, 1)
    xena.publish(inbox("bob", "xena"), receipt("b-1"))
    # New messages work, both ways, even with an id the old xena used.
    bob.publish(inbox("xena", "bob"), text("b-new", "hello new xena"))
    xena.publish(inbox("bob", "xena"), text("x-1", "the new xena's first"))
    wait_chat(env, 7)
    assert inbox_until(xena, "b-new") == ["b-new"]
    assert status_of(env, "bob", "b-1") == [("sent",)]

    mine = history_all(rpc, **{"with": "bob"})
    assert [(m["id"], m["body"]) for m in mine] == [
        ("x-1", "the new xena's first"), ("b-new", "hello new xena")]
    assert ids(sync_all(rpc)) == ["b-new", "x-1"]
    for m in mine:
        assert rpc.call("get", seq=m["seq"])["ok"] is True

    # bob still has his whole conversation with the name, old and new.
    brpc = Rpc(bob, "bob")
    assert [(m["id"], m["body"]) for m in history_all(brpc, **{"with": "xena"})] == [
        ("x-1", "the new xena's first"), ("b-new", "hello new xena"),
        ("b-3", "for the old xena 3"), ("b-2", "for the old xena 2"), ("b-1", "for the old xena 1"),
        ("x-1", "from the old xena")]
    assert ids(history_all(brpc, room="lab")) == ["x-2"]
    for s in seqs:
        assert brpc.call("get", seq=s)["ok"] is True
    # What an operator exports for the new xena is hers only.
    doc = json.loads(ok(d, "user", "export", "xena").out)
    assert ids(doc["messages"]) == ["b-new", "x-1"]


def test_restore_gives_the_same_person_her_data_back(world):
    env = world()
    d = env.datadir
    seqs, created = old_xena(env)
    assert cli_add(env, "xena", "--restore").out == "user xena restored\n"
    assert env.store.sql("SELECT created FROM users WHERE name='xena'") == [(created,)]
    assert env.store.sql("SELECT name FROM retired") == []
    # The same person, on the same phone: her session and its queue are hers.
    xena = env.user("xena", password=NEW_PW, client_id="xena@phone", clean=False)
    assert inbox_until(xena, "b-3") == ["b-1", "b-2", "b-3"]
    rpc = Rpc(xena, "xena")
    assert ids(history_all(rpc, **{"with": "bob"})) == ["b-3", "b-2", "b-1", "x-1"]
    assert ids(sync_all(rpc)) == ["x-1", "b-1", "b-2", "b-3"]   # lab: no member any more
    for s in seqs[:1] + seqs[2:]:
        assert rpc.call("get", seq=s)["ok"] is True
    # Her receipts count again.
    xena.publish(inbox("bob", "xena"), receipt("b-2"))
    harness.wait_for(lambda: status_of(env, "bob", "b-2") == [("read",)], what="her receipt applied")
    # A second restore, or an add, finds the name in use.
    fails(d, EXISTS, "user", "add", "xena", "--restore", "--password-stdin", stdin=NEW_PW + "\n",
          err="user 'xena' already exists")


def test_a_room_created_again_shows_nobody_its_old_history(world):
    env = world()
    d = env.datadir
    bob = env.user("bob", client_id="bob@desk")
    bob.publish(room("lab", "bob"), text("old-1", "the old lab"))
    bob.publish(room("lab", "bob"), text("old-2", "the old lab again"))
    wait_chat(env, 2)
    old = [s for (s,) in env.rows("SELECT seq FROM messages WHERE type<>'event' ORDER BY seq")]
    assert ok(d, "room", "del", "lab").out == "room lab deleted\n"
    # Its name is retired for 30 days (docs/PROTOCOL.md): as if they had passed.
    env.store.sql("UPDATE rooms_retired SET deleted = deleted - 31 * 86400000")
    ok(d, "room", "create", "lab")
    cli_add(env, "carol")
    ok(d, "room", "add", "lab", "alice", "carol")    # alice was in the old lab
    for name, pw in (("alice", PASSWORD), ("carol", NEW_PW)):
        c = env.user(name, password=pw, client_id=name + "@x")
        rpc = Rpc(c, name)
        assert history_all(rpc, room="lab") == [], name
        assert sync_all(rpc) == [], name
        for s in old:
            assert rpc.call("get", seq=s)["error"] == "not_found", (name, s)
    # Not even bob, re-added, who wrote them.
    ok(d, "room", "add", "lab", "bob")
    brpc = Rpc(bob, "bob")
    assert history_all(brpc, room="lab") == [] and sync_all(brpc) == []
    # The new room works as any.
    bob.publish(room("lab", "bob"), text("new-1", "the new lab"))
    wait_chat(env, 3)
    assert ids(history_all(brpc, room="lab")) == ["new-1"]
    crpc = Rpc(env.user("carol", password=NEW_PW, client_id="carol@y"), "carol")
    assert ids(sync_all(crpc)) == ["new-1"]
    new = env.rows("SELECT seq FROM messages WHERE id='new-1'")[0][0]
    assert crpc.call("get", seq=new)["ok"] is True


def test_a_member_receipt_does_not_mark_a_room_message_read(world):
    env = world()
    cli_add(env, "carol")
    ok(env.datadir, "room", "add", "lab", "carol")
    alice = env.user("alice", client_id="alice@desk")
    assert alice.subscribe("chat/inbox/alice/#") in (0, 1)
    bob = env.user("bob", client_id="bob@desk")
    carol = env.user("carol", password=NEW_PW, client_id="carol@desk")
    alice.publish(room("lab", "alice"), text("rm", "hello lab"))
    alice.publish(inbox("bob", "alice"), text("dm", "hello bob"))
    wait_chat(env, 2)
    # bob reads the room message and the DM; carol, another member, only
    # gets it delivered. Each receipt reaches alice's inbox.
    bob.publish(inbox("alice", "bob"), receipt("rm", "read", mid="rb1"))
    carol.publish(inbox("alice", "carol"), receipt("rm", "delivered", mid="rc1"))
    bob.publish(inbox("alice", "bob"), receipt("dm", "read", mid="rb2"))
    got = {}
    while len(got) < 3:
        m = alice.get()
        e = json.loads(m.payload)
        got[e["id"]] = (m.topic, e["ref"], e["status"])
    assert got == {"rb1": ("chat/inbox/alice/bob", "rm", "read"),
                   "rc1": ("chat/inbox/alice/carol", "rm", "delivered"),
                   "rb2": ("chat/inbox/alice/bob", "dm", "read")}
    # The DM is read (the archiver applies receipts in order: once the
    # last one shows, the room receipts were handled before it).
    harness.wait_for(lambda: status_of(env, "alice", "dm") == [("read",)], what="the DM receipt")
    assert status_of(env, "alice", "rm") == [("sent",)]
    rpc = Rpc(alice, "alice")
    assert [(m["id"], m["status"]) for m in history_all(rpc, room="lab")] == [("rm", "sent")]
