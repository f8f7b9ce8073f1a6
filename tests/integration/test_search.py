"""search (docs/PROTOCOL.md, "search"): case-insensitive substrings of the
texts the asker may read (what history would give them: direct messages to
or from them since their account was created, rooms they are in now since
the room was created), newest first, in pages; the text is always a
literal, never FTS syntax; edits, deletes, purges and erasures take their
texts out of the index."""
import json
import os
import sqlite3
import time

import harness
from archiver_util import DAY_MS, arch_env, inbox, room  # noqa: F401 (a fixture)
from cli_util import ok
from test_rooms_members import Person, call_ok, fails


def send(client, topic, body, mid):
    client.publish(topic, harness.envelope(body, id=mid))


def indexed(env):
    """Has the archiver indexed every text it stored (texts are indexed in
    batches, within a second: meta fts_seq is how far)?"""
    mark = env.rows("SELECT CAST(value AS INTEGER) FROM meta WHERE key='fts_seq'")
    last = env.rows("SELECT max(seq) FROM messages WHERE type='text'")[0][0] or 0
    return bool(mark) and mark[0][0] >= last


def wait_ids(env, *ids):
    """Wait until the messages ids are archived and indexed."""
    want = set(ids)
    harness.wait_for(lambda: want <= set(r[0] for r in env.rows("SELECT id FROM messages")),
                     what="%s archived" % sorted(want))
    harness.wait_for(lambda: indexed(env), what="the texts indexed")


def pages(rpc, text, **args):
    """Every page of a search, following next while more (a page looks at
    a bounded number of messages for a bounded time: a slow machine may
    need more pages than a fast one); each checked for order and size."""
    out, limit = [], args.get("limit", 20)
    while True:
        ans = call_ok(rpc, "search", text=text, **args)
        seqs = [m["seq"] for m in ans["messages"]]
        assert seqs == sorted(seqs, reverse=True) and len(seqs) <= limit, ans
        if "before" in args and seqs:
            assert seqs[0] < args["before"]
        out.append(ans)
        if not ans["more"]:
            assert "next" not in ans
            return out
        assert ans["next"] < args.get("before", 2 ** 62) and len(out) < 1000, ans
        args = dict(args, before=ans["next"])


def found(rpc, text, **args):
    """The ids of every hit of a search, newest first, over all its pages."""
    return [m["id"] for ans in pages(rpc, text, **args) for m in ans["messages"]]


def world(env):
    """alice and bob write each other; the lobby (alice, bob, carol) too."""
    alice, bob = Person(env, "alice"), Person(env, "bob")
    send(alice.c, inbox("bob", "alice"), "Let's have LUNCH at noon", "a-1")
    send(bob.c, inbox("alice", "bob"), "my lunchbox is ready", "b-1")
    send(bob.c, room("lobby", "bob"), "no Lunch today", "b-2")
    send(alice.c, inbox("bob", "alice"), "dinner then", "a-2")
    wait_ids(env, "a-1", "b-1", "b-2", "a-2")
    return alice, bob


def test_substrings_case_insensitive_newest_first_with_scopes(arch_env):
    env = arch_env(users=("alice", "bob", "carol"), rooms={"lobby": ["alice", "bob", "carol"]})
    alice, bob = world(env)
    for text in ("lunch", "LUNCH", "unc", "Lunch"):
        assert found(alice, text) == ["b-2", "b-1", "a-1"], text
    (m,) = [m for ans in pages(alice, "lunchbox") for m in ans["messages"]]
    assert (m["id"], m["from"], m["to"], m["type"], m["body"]) == ("b-1", "bob", "alice", "text", "my lunchbox is ready")
    assert isinstance(m["seq"], int) and m["status"] in ("sent", "delivered", "read")
    assert found(alice, "lunch", **{"with": "bob"}) == ["b-1", "a-1"]
    assert found(alice, "lunch", room="lobby") == ["b-2"]
    assert found(bob, "lunch", **{"with": "carol"}) == []
    carol = Person(env, "carol")
    assert found(carol, "lunch") == ["b-2"]
    assert found(alice, "noon at") == [] and found(alice, "h at n") == ["a-1"]
    # Unicode folds too.
    send(alice.c, inbox("bob", "alice"), "ÉCOLE fermée", "a-3")
    wait_ids(env, "a-3")
    assert found(bob, "école") == ["a-3"]


def test_never_what_the_asker_may_not_read(arch_env):
    env = arch_env(users=("alice", "bob", "carol", "dave", "erin"),
                   rooms={"lobby": ["alice", "bob"], "secret": ["carol", "dave"], "old": ["alice", "carol"]})
    alice, bob = Person(env, "alice"), Person(env, "bob")
    carol, dave, erin = Person(env, "carol"), Person(env, "dave"), Person(env, "erin")
    send(carol.c, inbox("dave", "carol"), "zebra for dave", "c-1")          # another pair's DM
    send(carol.c, room("secret", "carol"), "zebra in secret", "c-2")        # a room alice is not in
    send(carol.c, room("old", "carol"), "zebra in old", "c-3")              # a room alice leaves
    send(bob.c, inbox("erin", "bob"), "zebra for the first erin", "b-1")    # a previous holder
    send(bob.c, inbox("alice", "bob"), "zebra for alice", "b-2")
    wait_ids(env, "c-1", "c-2", "c-3", "b-1", "b-2")
    assert found(alice, "zebra") == ["b-2", "c-3"]
    call_ok(alice, "room_leave", room="old")
    assert found(alice, "zebra") == ["b-2"]
    assert found(dave, "zebra") == ["c-2", "c-1"]
    assert found(erin, "zebra") == ["b-1"]
    # erin's name changes hands: the new erin finds nothing of the old one.
    erin.c.close()
    ok(env.datadir, "user", "del", "erin")
    env.store.sql("DELETE FROM retired WHERE name='erin'")   # 30 days later
    env.store.add_user("erin")
    erin = Person(env, "erin")
    assert found(erin, "zebra") == []
    assert found(erin, "zebra", **{"with": "bob"}) == []
    # A room one is not in is refused, as history refuses it.
    fails(alice, "forbidden", "search", text="zebra", room="secret")
    fails(alice, "forbidden", "search", text="zebra", room="nosuchroom")


def test_pages_with_before_and_next(arch_env):
    env = arch_env(users=("alice", "bob"))
    alice, bob = Person(env, "alice"), Person(env, "bob")
    ids = ["p-%02d" % i for i in range(25)]
    for i, mid in enumerate(ids):
        send(bob.c, inbox("alice", "bob"), "page item %d" % i, mid)
        send(bob.c, inbox("alice", "bob"), "unrelated %d" % i, "u-%02d" % i)
    wait_ids(env, *ids)
    for limit in (1, 7, 10, 20, 100):
        ps = pages(alice, "page item", limit=limit)
        got = [m["id"] for ans in ps for m in ans["messages"]]
        assert got == list(reversed(ids)), (limit, got)
        assert len(ps) >= -(-25 // limit)
    # Without limit: at most 20 a page.
    ps = pages(alice, "page item")
    assert max(len(a["messages"]) for a in ps) <= 20 and len(ps) >= 2
    # A page from the middle: only what is older.
    (p12,) = env.rows("SELECT seq FROM messages WHERE id='p-12'")[0]
    assert found(alice, "page item", before=p12) == list(reversed(ids[:12]))


def test_bad_requests(arch_env):
    env = arch_env(users=("alice", "bob"))
    alice = Person(env, "alice")
    for args in ({}, {"text": "lu"}, {"text": ""}, {"text": 123}, {"text": None},
                 {"text": "x" * 257}, {"text": "é" * 129},
                 {"text": "日本"},                          # 6 bytes, 2 characters: no trigram
                 {"text": "lunch", "limit": 0}, {"text": "lunch", "limit": 101},
                 {"text": "lunch", "limit": "5"}, {"text": "lunch", "before": 0},
                 {"text": "lunch", "before": -3}, {"text": "lunch", "with": "bob", "room": "lobby"},
                 {"text": "lunch", "with": "Not A Name"}, {"text": "lunch", "room": "Bad Room"}):
        ans = fails(alice, "bad_request", "search", **args)
        assert ans["message"], ans
    assert call_ok(alice, "search", text="x" * 256)["messages"] == []
    assert call_ok(alice, "search", text="日本語")["messages"] == []


def test_fts_syntax_is_literal(arch_env):
    env = arch_env(users=("alice", "bob"))
    alice, bob = Person(env, "alice"), Person(env, "bob")
    texts = {"q-1": 'she said "quoted" twice', "q-2": "apples AND pears", "q-3": "food",
             "q-4": "foo* is a glob", "q-5": "NEAR(a b) call", "q-6": "col:umn and (paren",
             "q-7": "^start here", "q-8": "apples OR pears"}
    for mid, body in texts.items():
        send(bob.c, inbox("alice", "bob"), body, mid)
    wait_ids(env, *texts)
    assert found(alice, '"quoted"') == ["q-1"]
    assert found(alice, 'd "quo') == ["q-1"]
    assert found(alice, "AND pears") == ["q-2"]
    assert found(alice, "foo*") == ["q-4"]
    assert found(alice, "NEAR(a b)") == ["q-5"]
    assert found(alice, "col:umn") == ["q-6"]
    assert found(alice, "(paren") == ["q-6"]
    assert found(alice, "^start") == ["q-7"]
    assert found(alice, "apples OR") == ["q-8"]
    assert sorted(found(alice, "apples")) == ["q-2", "q-8"]
    for text in ('"""', '" OR "', "a*b", "x:y", "NOT apples", "-pears", "{a b}"):
        call_ok(alice, "search", text=text)


def test_edits_deletes_purge_and_erasure_leave_the_index(arch_env):
    env = arch_env(users=("alice", "bob", "carol"))
    alice, bob = Person(env, "alice"), Person(env, "bob")
    send(alice.c, inbox("bob", "alice"), "lunch at noon", "a-1")
    send(alice.c, inbox("bob", "alice"), "lunch tomorrow", "a-2")
    wait_ids(env, "a-1", "a-2")
    call_ok(alice, "edit", ref="a-1", body="dinner at eight")
    assert found(bob, "lunch") == ["a-2"] and found(bob, "dinner") == ["a-1"]
    call_ok(alice, "delete", ref="a-2")
    assert found(bob, "lunch") == [] and found(alice, "tomorrow") == []
    # Erasure: carol's account goes with her messages.
    carol = Person(env, "carol")
    send(carol.c, inbox("bob", "carol"), "carol says lunch", "c-1")
    wait_ids(env, "c-1")
    assert found(bob, "lunch") == ["c-1"]
    carol.c.close()
    ok(env.datadir, "user", "del", "carol", "--erase")
    assert found(bob, "lunch") == []
    assert env.rows("SELECT count(*) FROM msg_fts WHERE msg_fts MATCH '\"carol says\"'") == [(0,)]
    # Purge: everything older than now.
    assert found(bob, "dinner") == ["a-1"]
    ok(env.datadir, "purge", "--older-than", "0")
    assert found(bob, "dinner") == [] and found(alice, "eight") == []
    assert env.rows("SELECT count(*) FROM msg_fts WHERE msg_fts MATCH '\"dinner\"'") == [(0,)]


def test_answers_fit(arch_env):
    """Hits too large to share an answer come on the next page."""
    env = arch_env(users=("alice", "bob"))
    alice, bob = Person(env, "alice"), Person(env, "bob")
    for i in range(4):
        send(bob.c, inbox("alice", "bob"), "needle " + "x" * 15000 + str(i), "n-%d" % i)
    wait_ids(env, *["n-%d" % i for i in range(4)])
    got, before = [], None
    for _ in range(10):
        args = {} if before is None else {"before": before}
        ans = call_ok(alice, "search", text="needle", **args)
        assert len(json.dumps(ans)) < 64 * 1024
        got += [m["id"] for m in ans["messages"]]
        if not ans["more"]:
            break
        before = ans["next"]
    assert got == ["n-3", "n-2", "n-1", "n-0"]


def test_the_newest_texts_are_found_before_they_are_indexed(arch_env):
    """Texts are indexed in batches, a moment after they are stored: a
    search looks at those not indexed yet itself, by the same rules."""
    env = arch_env(users=("alice", "bob", "carol"), rooms={"lobby": ["alice", "bob"]})
    alice, bob, carol = Person(env, "alice"), Person(env, "bob"), Person(env, "carol")
    send(bob.c, inbox("alice", "bob"), "old Walrus", "o-1")
    wait_ids(env, "o-1")
    for i in range(3):
        send(bob.c, inbox("alice", "bob"), "new walrus %d" % i, "n-%d" % i)
        send(carol.c, inbox("bob", "carol"), "walrus for bob only", "c-%d" % i)
        send(bob.c, room("lobby", "bob"), "lobby WALRUS %d" % i, "l-%d" % i)
    harness.wait_for(lambda: env.rows("SELECT count(*) FROM messages WHERE type='text'") == [(10,)],
                     what="the texts archived")
    want = ["l-2", "n-2", "l-1", "n-1", "l-0", "n-0", "o-1"]
    assert found(alice, "walrus") == want
    assert found(alice, "walrus", limit=4) == want
    assert found(alice, "walrus", **{"with": "bob"}) == ["n-2", "n-1", "n-0", "o-1"]
    assert found(alice, "walrus", room="lobby") == ["l-2", "l-1", "l-0"]
    # And the same once everything is indexed.
    harness.wait_for(lambda: indexed(env), what="the texts indexed")
    assert found(alice, "walrus") == want


def test_retention_takes_hits_away(arch_env):
    """Texts past the retention are deleted by the archiver (expiry), and
    from the index with them."""
    env = arch_env(users=("alice", "bob"))
    env.store.sql("UPDATE users SET created=0")          # accounts older than the texts
    alice = Person(env, "alice")
    old = int(time.time() * 1000) - 40 * DAY_MS
    db = sqlite3.connect(os.path.join(env.datadir, "archive.db"), isolation_level=None, timeout=10)
    try:
        for i in range(3):
            db.execute("INSERT INTO messages(sender, recipient, room, conv, type, id, body, ts, server_ts,"
                       " idh) VALUES('bob', 'alice', NULL, 'd:alice|bob', 'text', ?, ?, NULL, ?, ?)",
                       ("old-%d" % i, "ancient mammoth %d" % i, old + i, 1000 + i))
    finally:
        db.close()
    send(Person(env, "bob").c, inbox("alice", "bob"), "a young mammoth", "new-1")
    wait_ids(env, "new-1")
    assert found(alice, "mammoth") == ["new-1", "old-2", "old-1", "old-0"]
    env.arch.stop()
    env.arch.start(args=["--expiry-interval", "1", "--retention", "30"])
    harness.wait_for(lambda: env.rows("SELECT count(*) FROM messages WHERE id LIKE 'old-%'") == [(0,)],
                     what="expiry")
    assert found(alice, "mammoth") == ["new-1"]
    assert env.rows("SELECT count(*) FROM msg_fts WHERE msg_fts MATCH 'ancient'") == [(0,)]
