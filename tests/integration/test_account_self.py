"""test_account_self.py - a person's own data and account (docs/PROTOCOL.md,
"Your data: export and delete_account"), over RPC and with the bundled
client, against the real broker, plugin and archiver.

export pages everything the service keeps about the requester (and nothing
of other people's conversations), every answer under the 64 KiB payload
limit; delete_account checks the password as passwd does, then deletes as
`mqchat-archiver user del [--erase]` does, and the asking connection,
closed by the broker as the account goes, learns the outcome by the
contract's rule (closed, then a login refused and login_status `refused`)."""
import json
import os
import pty
import secrets
import select
import sqlite3
import stat
import time

import pytest

import harness
from archiver_util import PASSWORD, Rpc, arch_env, inbox, room  # noqa: F401 (fixture)
from cli_util import EXISTS, fails
from client_util import AUTH, DEVICE, FAILED, OK, USAGE, client_env, mqchat
from client_util import argv as client_argv

NOT_AUTHORIZED = 5          # MQTT 3.1.1 CONNACK
LIMIT = 60000               # every answer with messages stays under this
BIG = 3000                  # bytes of a big body: 40 of them make > 64 KiB


def text(mid, body=None):
    return json.dumps({"id": mid, "type": "text", "body": body or mid, "ts": 1000})


def raw_call(client, user, req):
    """One request; (parsed answer, payload size in bytes)."""
    req = dict(req, id=secrets.token_hex(6))
    client.publish("chat/rpc/%s/req" % user, json.dumps(req))
    deadline = time.monotonic() + harness.DEFAULT_TIMEOUT
    while True:
        m = client.get(max(0.05, deadline - time.monotonic()))
        if m.topic == "chat/rpc/%s/resp" % user:
            ans = json.loads(m.payload)
            if ans.get("id") == req["id"]:
                return ans, len(m.payload)


def export_pages(client, user):
    """Every page of user's export, asked as the contract says."""
    Rpc(client, user)   # subscribe to the answers
    req, pages = {"op": "export"}, []
    last = 0
    while True:
        ans, size = raw_call(client, user, req)
        assert ans["ok"] is True, ans
        assert size < LIMIT, size
        pages.append(ans)
        for m in ans.get("messages", []):
            assert m["seq"] > last, "pages out of order"
            last = m["seq"]
        if not ans["more"]:
            return pages
        assert len(pages) < 1000
        if "lists_next" in ans:
            req = {"op": "export", "lists_from": ans["lists_next"]}
        else:
            req = {"op": "export", "after": last}


def assemble(pages):
    doc = {}
    for p in pages:
        for k in ("account", "privacy", "devices"):
            if k in p:
                doc[k] = p[k]
        for k in ("rooms", "contacts", "blocks", "messages"):
            if k in p:
                doc.setdefault(k, []).extend(p[k])
    return doc


def mine_in_archive(env, user):
    """(seq, id) of what user sent or received, oldest first, from archive.db."""
    return env.rows("SELECT seq, id FROM messages WHERE sender=? OR recipient=? ORDER BY seq",
                    user, user)


def login_code(env, name, password=PASSWORD, client_id=None):
    c = harness.Client(env.broker.port, name, password, client_id=client_id or name + "@probe")
    c.c._reconnect_on_failure = False
    try:
        return c.connect()
    finally:
        c.close()


def login_status(env, name):
    cid = "_register@" + secrets.token_hex(6)
    c = env.clients(env.broker, "_register", "x", client_id=cid)
    assert c.connect() == 0
    assert c.subscribe("chat/register/%s/resp" % cid) in (0, 1)
    c.publish("chat/register/%s/req" % cid, json.dumps({"id": "l1", "op": "login_status",
                                                         "user": name}))
    ans = json.loads(c.get().payload)
    c.close()
    return ans["status"]


def register(env, name):
    cid = "_register@" + secrets.token_hex(6)
    c = env.clients(env.broker, "_register", "x", client_id=cid)
    assert c.connect() == 0
    assert c.subscribe("chat/register/%s/resp" % cid) in (0, 1)
    c.publish("chat/register/%s/req" % cid, json.dumps({"id": "g1", "user": name,
                                                         "password": "brand-new-pw-1"}))
    ans = json.loads(c.get().payload)
    c.close()
    return ans


@pytest.fixture
def world(arch_env):
    """alice in lobby with bob, a contact (bob), a block (dave), a device
    token, privacy everyone; a conversation of bob and carol that is none
    of alice's business."""
    def make(registration="off"):
        env = arch_env(registration=registration, users=["alice", "bob", "carol", "dave"],
                       rooms={"lobby": ["alice", "bob"], "other": ["bob", "carol"]})
        env.store.add_contact("alice", "bob")
        env.store.block("alice", "dave")
        env.store.set_privacy("alice", presence="everyone")
        env.alice = env.user("alice", client_id="alice@phone")
        env.bob = env.user("bob")
        env.carol = env.user("carol")
        tok = Rpc(env.alice, "alice").call("device_token", device="phone", password=PASSWORD)
        assert tok["ok"] is True, tok
        # After a right password the next check waits 1 s (passwd's throttle).
        time.sleep(1.1)
        return env
    return make


def chat_some(env, big=40):
    """alice and bob write (big of alice's are BIG bytes: the export needs
    several pages), alice and bob post in lobby, bob and carol talk."""
    for i in range(big):
        env.alice.publish(inbox("bob", "alice"), text("a%03d" % i, "%03d" % i + "x" * BIG))
    for i in range(10):
        env.bob.publish(inbox("alice", "bob"), text("b%03d" % i))
        env.carol.publish(inbox("bob", "carol"), text("c%03d" % i))
        env.bob.publish(inbox("carol", "bob"), text("d%03d" % i))
        env.bob.publish(room("other", "bob"), text("o%03d" % i))
    for i in range(5):
        env.alice.publish(room("lobby", "alice"), text("la%03d" % i))
        env.bob.publish(room("lobby", "bob"), text("lb%03d" % i))
    env.wait_rows(big + 50)


# ---- export ----

def test_export_pages_all_of_mine_and_nothing_else(world):
    env = world()
    chat_some(env)
    # A room of her own: the export says she owns it.
    assert Rpc(env.alice, "alice").call("room_create", room="mine")["ok"] is True
    pages = export_pages(env.alice, "alice")
    assert len(pages) >= 3, [len(p["messages"]) for p in pages]
    first = pages[0]
    created = env.store.sql("SELECT created FROM users WHERE name='alice'")[0][0]
    assert first["account"] == {"name": "alice", "nick": "alice", "kind": "user", "created": created}
    assert first["privacy"] == {"presence": "everyone", "room_adds": "contacts"}
    assert [set(d) for d in first["devices"]] == [{"device", "created", "last_seen"}]
    assert first["devices"][0]["device"] == "phone"
    assert first["rooms"] == [{"room": "lobby", "role": "member"}, {"room": "mine", "role": "owner"}]
    assert [c["user"] for c in first["contacts"]] == ["bob"]
    assert first["blocks"] == ["dave"]
    for p in pages[1:]:
        assert set(p) == {"id", "ok", "messages", "more"}, p.keys()
    doc = assemble(pages)
    got = [(m["seq"], m["id"]) for m in doc["messages"]]
    assert got == mine_in_archive(env, "alice")
    assert len(got) == 40 + 10 + 5
    for m in doc["messages"]:
        assert "alice" in (m["from"], m.get("to")), m
        assert "truncated" not in m
    big = [m for m in doc["messages"] if m["id"].startswith("a")]
    assert [m["body"] for m in big] == ["%03d" % i + "x" * BIG for i in range(40)]


def test_export_lists_that_do_not_fit_one_answer(world):
    env = world()
    names = ["contact-%021d" % i for i in range(1200)]
    db = sqlite3.connect(env.store.path, timeout=10)
    now = int(time.time() * 1000)
    with db:
        db.executemany("INSERT INTO users(name, kind, nick, pwhash, enabled, created)"
                       " VALUES(?,?,?,?,1,?)",
                       [(n, "user", n, "$pbkdf2-sha512$1$AA==$AA==", now) for n in names])
        db.executemany("INSERT INTO contacts(user, contact, since) VALUES('alice',?,?)",
                       [(n, now) for n in names])
        db.executemany("INSERT INTO blocks(user, blocked) VALUES('alice',?)", [(n,) for n in names])
    db.close()
    env.alice.publish(inbox("bob", "alice"), text("hello"))
    env.wait_rows(1)
    pages = export_pages(env.alice, "alice")
    assert any("lists_next" in p for p in pages)
    doc = assemble(pages)
    assert [c["user"] for c in doc["contacts"]] == ["bob"] + names
    assert doc["blocks"] == names + ["dave"]
    assert doc["rooms"] == [{"room": "lobby", "role": "member"}]
    assert [m["id"] for m in doc["messages"]] == ["hello"]


def test_export_bad_requests(world):
    env = world()
    Rpc(env.alice, "alice")
    for req in ({"after": -1}, {"after": "1"}, {"lists_from": "contacts"},
                {"lists_from": {"list": "friends"}}, {"lists_from": {"list": "blocks", "after": "A"}},
                {"after": 0, "lists_from": {"list": "rooms"}}):
        ans, _ = raw_call(env.alice, "alice", dict(req, op="export"))
        assert ans["ok"] is False and ans["error"] == "bad_request", (req, ans)


# ---- delete_account over RPC ----

def account_rows(env, name):
    s = env.store.sql
    return (s("SELECT count(*) FROM users WHERE name=?", name)[0][0],
            s("SELECT count(*) FROM members WHERE user=?", name)[0][0],
            s("SELECT count(*) FROM blocks WHERE user=? OR blocked=?", name, name)[0][0],
            s("SELECT count(*) FROM contacts WHERE user=? OR contact=?", name, name)[0][0],
            s("SELECT count(*) FROM devices WHERE user=?", name)[0][0])


def test_delete_account_wrong_password_then_throttled_changes_nothing(world):
    env = world()
    before = account_rows(env, "alice")
    assert before == (1, 1, 1, 1, 1)
    rpc = Rpc(env.alice, "alice")
    codes = []
    for _ in range(12):
        ans = rpc.call("delete_account", password="not-the-password")
        codes.append(ans["error"])
        if ans["error"] == "rate_limited":
            assert 0 < ans["retry_ms"] <= 60000, ans
    assert codes[:3] == ["bad_password"] * 3 and "rate_limited" in codes, codes
    # While locked even the right password is not looked at.
    ans = rpc.call("delete_account", password=PASSWORD, erase=True)
    assert ans["error"] == "rate_limited", ans
    assert account_rows(env, "alice") == before
    assert login_code(env, "alice") == 0


def test_delete_account_bad_input(world):
    env = world()
    rpc = Rpc(env.alice, "alice")
    for args in ({}, {"password": 5}, {"password": PASSWORD, "erase": "yes"},
                 {"password": None}):
        ans = rpc.call("delete_account", **args)
        assert ans["ok"] is False and ans["error"] == "bad_request", (args, ans)
    assert account_rows(env, "alice")[0] == 1


@pytest.mark.parametrize("erase", [False, True])
def test_delete_account_closes_retires_and_keeps_or_erases(world, erase):
    env = world(registration="open")
    chat_some(env, big=3)
    theirs = env.rows("SELECT seq FROM messages WHERE sender<>'alice' AND"
                      " (recipient IS NULL OR recipient<>'alice') ORDER BY seq")
    mine = mine_in_archive(env, "alice")
    laptop = env.user("alice", client_id="alice@laptop")
    rpc = Rpc(env.alice, "alice")
    req = {"id": "del1", "op": "delete_account", "password": PASSWORD, "erase": erase}
    env.alice.publish("chat/rpc/alice/req", json.dumps(req))
    # The contract's rule: closed by the server, with no answer (or ok).
    assert env.alice.disconnected.wait(harness.DEFAULT_TIMEOUT)
    assert laptop.disconnected.wait(harness.DEFAULT_TIMEOUT)
    answers = []
    while not env.alice.messages.empty():
        m = env.alice.messages.get()
        if m.topic == "chat/rpc/alice/resp":
            answers.append(json.loads(m.payload))
    assert answers in ([], [{"id": "del1", "ok": True}]), answers
    assert login_code(env, "alice") == NOT_AUTHORIZED
    assert login_status(env, "alice") == "refused"
    assert account_rows(env, "alice") == (0, 0, 0, 0, 0)
    assert [r[0] for r in env.store.sql("SELECT name FROM retired")] == ["alice"]
    # The name is retired: neither registration nor an operator takes it.
    assert register(env, "alice")["error"] == "taken"
    fails(env.datadir, EXISTS, "user", "add", "alice", "--password-stdin",
          stdin="brand-new-pw-1\n")
    # Everybody else's messages stay; alice's go only with erase.
    assert env.rows("SELECT seq FROM messages WHERE sender<>'alice' AND"
                    " (recipient IS NULL OR recipient<>'alice') ORDER BY seq") == theirs
    assert mine_in_archive(env, "alice") == ([] if erase else mine)
    hist = Rpc(env.bob, "bob").call("history", **{"with": "alice", "limit": 100})
    assert len(hist["messages"]) == (0 if erase else 3 + 10)
    del rpc


# ---- the client ----

def tokens(datadir):
    d = os.path.join(datadir, "home", "config", "mqchat", "tokens")
    return sorted(n for n in os.listdir(d) if not n.endswith(".lock")) if os.path.isdir(d) else []


def test_client_export_to_a_private_file_and_to_stdout(world):
    env = world()
    chat_some(env)
    # A quote takes 2 bytes in JSON: this one comes cut ("truncated") in
    # its page, and the client gets the rest with get.
    huge = '"' * 30000
    env.alice.publish(inbox("bob", "alice"), text("huge", huge))
    env.wait_rows(40 + 50 + 1)
    cut = assemble(export_pages(env.alice, "alice"))["messages"][-1]
    assert cut["truncated"] is True and cut["body_bytes"] == 30000 and len(cut["body"]) < 30000
    b, d = env.broker, env.datadir
    out = os.path.join(d, "alice-export.json")
    with open(out, "w") as f:
        f.write("old")
    os.chmod(out, 0o644)
    r = mqchat(b, d, "alice", "export", "--output", out)
    assert r.rc == OK, r
    assert r.out == "" and r.err == "exported 56 messages of alice to %s\n" % out, r
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    with open(out) as f:
        doc = json.load(f)
    assert list(doc) == ["account", "privacy", "devices", "rooms", "contacts", "blocks", "messages"]
    assert [(m["seq"], m["id"]) for m in doc["messages"]] == mine_in_archive(env, "alice")
    assert doc["account"]["name"] == "alice" and doc["blocks"] == ["dave"]
    assert doc["messages"][-1]["body"] == huge and "truncated" not in doc["messages"][-1]
    r = mqchat(b, d, "alice", "export")
    assert r.rc == OK and r.err == "", r
    assert json.loads(r.out) == doc


def test_client_export_bad_input(world):
    env = world()
    b, d = env.broker, env.datadir
    r = mqchat(b, d, "alice", "export", "--bogus")
    assert r.rc == USAGE and r.err == "Error: unknown option '--bogus' (see `mqchat export " \
        "--help`)\n", r
    r = mqchat(b, d, "alice", "export", "extra")
    assert r.rc == USAGE and r.err.startswith("Error: unexpected argument 'extra'\n"), r
    r = mqchat(b, d, "alice", "export", "--output")
    assert r.rc == USAGE and r.err.count("\n") == 1, r
    r = mqchat(b, d, "alice", "export", "--help")
    assert r.rc == OK and r.out == "usage: mqchat export [--output FILE]\n", r
    r = mqchat(b, d, "alice", "export", "--output", os.path.join(d, "no", "such", "dir", "f"))
    assert r.rc == FAILED and r.err.startswith("Error: cannot write "), r


def test_client_delete_account_with_yes_forgets_the_tokens(world):
    env = world()
    b, d = env.broker, env.datadir
    r = mqchat(b, d, "alice", "login")
    assert r.rc == OK, r
    assert tokens(d) == ["alice@%s" % DEVICE, "alice@%s.cmd" % DEVICE]
    r = mqchat(b, d, "alice", "delete-account", "--yes", "--erase")
    assert r.rc == OK, r
    assert r.out == "account alice deleted, its messages erased\n" and r.err == "", r
    assert tokens(d) == []
    assert account_rows(env, "alice") == (0, 0, 0, 0, 0)
    assert login_code(env, "alice") == NOT_AUTHORIZED
    # Again: the account is gone, so the login is refused.
    r = mqchat(b, d, "alice", "delete-account", "--yes")
    assert r.rc == AUTH, r


def test_client_delete_account_refuses_off_a_terminal_and_bad_input(world):
    env = world()
    b, d = env.broker, env.datadir
    r = mqchat(b, d, "alice", "delete-account")
    assert (r.rc, r.out, r.err) == (USAGE, "", "Error: no terminal to confirm on: give --yes to "
                                    "delete alice\n"), r
    r = mqchat(b, d, "alice", "delete-account", "--force")
    assert r.rc == USAGE and r.err == "Error: unknown option '--force' (see `mqchat " \
        "delete-account --help`)\n", r
    r = mqchat(b, d, "alice", "delete-account", "--help")
    assert r.rc == OK and r.out == "usage: mqchat delete-account [--erase] [--yes] [--json]\n", r
    r = mqchat(b, d, "alice", "delete-account", "--yes", password="wrong-password-1")
    assert r.rc == AUTH, r
    assert account_rows(env, "alice")[0] == 1


def typed_on_tty(argv, env, line, timeout=30):
    """Run argv on a new terminal with line typed ahead (the terminal keeps
    it until the program reads its line). Returns (exit status, everything
    the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(argv[0], argv, env)
    os.write(fd, line.encode() + b"\n")
    shown, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], 0.1)[0]:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:     # the program exited: the terminal is gone
                break
            if not data:
                break
            shown += data
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace").replace("\r\n", "\n")


def test_client_delete_account_confirmed_on_the_terminal(world):
    env = world()
    b, d = env.broker, env.datadir
    argv = client_argv(b, "alice", "delete-account")
    rc, shown = typed_on_tty(argv, client_env(d), "bob")
    assert rc == FAILED and "Error: not confirmed: nothing was deleted" in shown, shown
    assert account_rows(env, "alice")[0] == 1
    rc, shown = typed_on_tty(argv, client_env(d), "alice")
    assert rc == OK and "account alice deleted\n" in shown, shown
    assert "This deletes the account alice for good" in shown
    assert account_rows(env, "alice")[0] == 0
