"""test_backup.py - `mqchat-archiver backup` while a real broker, plugin and
archiver run under load, then `restore` into an empty folder served by a
NEW broker and archiver; and every bad input of both commands.

The scenario (one stack per module): `init`, accounts, two rooms with
members, a block, a device token and a push target (webhook) registered
over RPC, and an old history of ~100 MB put straight into archive.db so
that copying it takes a while. Six paho publishers send 3,000 QoS 1
messages (DMs and room messages) at a steady pace, recording when each
PUBACK came; `backup` runs in the middle. A monitor thread reads the
original archive.db's largest seq and the size of the backup's
archive.db.part every few ms: ingest must go on committing while the
archive's snapshot is being copied (a copy that held the writers out would
show no new seq while .part grows), and the largest pause between commits
during the backup stays under a bound that holds on a busy machine.
After the restore: every account logs in with its password (and a wrong
password is refused), the device token logs in, rooms and members, the
block and the push target are there, every message acknowledged before the
backup began is in archive.db and in `history`, and nothing is there
twice (the journal's copy is replayed over archive.db's snapshot).

Under load the journal's copy rarely holds a message that archive.db's
snapshot lacks (the test prints how many did); a test of its own makes
some: a writer of the test holds archive.db's lock, so what the archiver
acknowledges stays in the journal, and the restored archiver stores it
from the journal's copy, once.

The bad inputs run the CLI on small folders made by `init`: nothing is
written (checked by listing the folders), and each error says what.

The numbering after a restore: messages stored after the backup are lost,
but an app saw their seqs; on a real stack, the first message stored after
the restore gets a seq above them and a sync from the largest brings it
(and search finds it: the index's watermark moved with the numbering).
The jump's bounds (a day's worth at least, refused near 2^53) and an
archive of schema version 1 run on small folders."""
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid

import pytest

import harness
import archiver_util
from archiver_util import Archiver, Rpc, arch_env, inbox, read_db, room, rpc_ok  # noqa: F401 (arch_env: a fixture)
from cli_util import EXISTS, INVALID, NODB, OK, RUNTIME, USAGE, cli

PASSWORD = "password-xxxx"
LOADERS = ["l%d" % i for i in range(6)]
PEOPLE = ["alice", "bob", "carol", "dave"] + LOADERS
ROOMS = {"hall": ["alice"] + LOADERS, "den": ["alice", "bob", "carol"]}
PER_LOADER = 500           # 3,000 messages in all
RATE = 100                 # per loader per second: about 5 s of load
OLD_ROWS = 25000           # ~100 MB of old history, so the archive's copy takes a while
OLD_BODY = "lorem ipsum dolor sit amet " * 150
# The numbering after a restore (restore.c): a million seqs a second since
# the backup began, at least a day's worth, and ten years' worth left below
# 2^53 - 1.
SEQ_PER_MS = 1000
DAY_MS = 86400 * 1000
SEQ_LIMIT = 2 ** 53 - 1 - 3653 * DAY_MS * SEQ_PER_MS
# The largest pause between two commits of the original archiver while the
# backup runs. Ingest commits every 50 ms under this load; a copy that held
# the writers out would pause them for the whole copy of archive.db.
MAX_COMMIT_GAP_S = 2.0


def idh(sender, msg_id):
    return int.from_bytes(hashlib.sha256((sender + "\0" + msg_id).encode()).digest()[:7], "big")


def prefill(datadir, n):
    """n old texts between p0 and p1 (accounts long gone), stored a day ago,
    already indexed for search as far as the archiver knows (fts_seq), so
    it spends nothing on them."""
    db = sqlite3.connect(os.path.join(datadir, "archive.db"), isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("BEGIN")
        t = int(time.time() * 1000) - 86400 * 1000
        db.executemany(
            "INSERT INTO messages(sender, recipient, room, conv, type, id, body, ts, server_ts, idh)"
            " VALUES('p0', 'p1', NULL, 'd:p0|p1', 'text', ?, ?, ?, ?, ?)",
            (("old%06d" % i, OLD_BODY, t + i, t + i, idh("p0", "old%06d" % i)) for i in range(n)))
        db.execute("UPDATE meta SET value=(SELECT max(seq) FROM messages) WHERE key='fts_seq'")
        db.execute("COMMIT")
        db.execute("PRAGMA journal_mode=WAL")
    finally:
        db.close()


def listing(path):
    """Every path under path (relative), or None if it does not exist."""
    if not os.path.exists(path):
        return None
    out = []
    for d, dirs, files in os.walk(path):
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(d, n), path))
    return sorted(out)


def write_conf(path):
    with open(path, "w") as f:
        f.write("push_webhook = on\npush_allow_http = 1\n")


class Stack:
    """A data folder served by a real broker + plugin + archiver."""

    def __init__(self, datadir, conf):
        self.datadir = datadir
        self.conf = conf
        self.broker = harness.Broker(datadir)
        self.arch = Archiver(datadir, self.broker.port, ["-c", conf])
        self.clients = []

    def start(self):
        self.broker.start()
        self.arch.start()
        return self

    def client(self, user, password=PASSWORD, client_id=None):
        c = harness.Client(self.broker.port, user, password, client_id=client_id or "%s@t%s" % (
            user, uuid.uuid4().hex[:6]))
        self.clients.append(c)
        return c

    def login(self, user, password=PASSWORD, client_id=None):
        c = self.client(user, password, client_id)
        code = c.connect()
        assert code == 0, "%s refused: %s" % (user, code)
        return c

    def stop(self, failed=False):
        for c in self.clients:
            c.close()
        self.arch.stop()
        self.broker.stop()
        if failed:
            return "---- archiver log (%s) ----\n%s\n---- broker log ----\n%s" % (
                self.datadir, self.arch.output()[-20000:], self.broker.output()[-5000:])
        return ""


class Original(Stack):
    def __init__(self):
        self.top = harness.make_datadir()
        datadir = os.path.join(self.top, "var")
        r = cli(datadir, "init")
        assert r.rc == OK, r
        self.store = harness.Store(os.path.join(datadir, "auth.db"))
        for u in PEOPLE:
            self.store.add_user(u, password=PASSWORD)
        for name, members in ROOMS.items():
            self.store.add_room(name, members=members)
        self.store.block("carol", "dave")
        prefill(datadir, OLD_ROWS)
        conf = os.path.join(self.top, "archiver.conf")
        write_conf(conf)
        super().__init__(datadir, conf)

    def stop(self, failed=False):
        out = super().stop(failed)
        shutil.rmtree(self.top, ignore_errors=True)
        return out


@pytest.fixture(scope="module")
def original(request):
    yield from harness.serve_stack(request, Original())


class Load:
    """Publishers sending at a steady pace; when each PUBACK came."""

    def __init__(self, stack):
        self.stack = stack
        self.sent = {}       # (sender, id) -> (topic kind, conversation)
        self.acked = {}      # (sender, id) -> monotonic time of its PUBACK
        self.lock = threading.Lock()
        self.threads = []
        self.errors = []

    def start(self):
        for i, user in enumerate(LOADERS):
            c = self.stack.login(user)
            t = threading.Thread(target=self.run, args=(c, user, LOADERS[(i + 1) % len(LOADERS)]))
            t.start()
            self.threads.append(t)

    def run(self, c, user, peer):
        mids = {}
        acks = {}

        def on_publish(client, userdata, mid):
            acks[mid] = time.monotonic()
        c.c.on_publish = on_publish
        try:
            t0 = time.monotonic()
            for k in range(PER_LOADER):
                msg_id = "%s-%05d" % (user, k)
                topic = inbox(peer, user) if k % 2 == 0 else room("hall", user)
                info = c.c.publish(topic, harness.envelope("load %d" % k, id=msg_id), qos=1)
                mids[info.mid] = msg_id
                with self.lock:
                    self.sent[(user, msg_id)] = ("dm", peer) if k % 2 == 0 else ("room", "hall")
                delay = t0 + (k + 1) / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            harness.wait_for(lambda: len(acks) >= PER_LOADER, 60, what="%s's PUBACKs" % user)
        except BaseException as e:
            self.errors.append(e)
        with self.lock:
            for mid, at in list(acks.items()):
                self.acked[(user, mids[mid])] = at

    def join(self):
        for t in self.threads:
            t.join(120)
        assert not self.errors, self.errors


class Monitor:
    """The original archive.db's largest seq and the backup's
    archive.db.part size, every few ms."""

    def __init__(self, datadir, dest):
        self.db = sqlite3.connect("file:%s?mode=ro" % os.path.join(datadir, "archive.db"), uri=True,
                                  timeout=10, check_same_thread=False)
        self.part = os.path.join(dest, "archive.db.part")
        self.samples = []    # (t, max seq, .part size or None)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self):
        while not self.stopped.is_set():
            seq = self.db.execute("SELECT max(seq) FROM messages").fetchone()[0]
            try:
                size = os.stat(self.part).st_size
            except FileNotFoundError:
                size = None
            self.samples.append((time.monotonic(), seq, size))
            time.sleep(0.003)

    def stop(self):
        self.stopped.set()
        self.thread.join()
        self.db.close()

    def commits(self, t0, t1):
        """Times in [t0, t1] at which the largest seq had grown since the sample before."""
        out = []
        for (ta, sa, _), (tb, sb, _) in zip(self.samples, self.samples[1:]):
            if t0 <= tb <= t1 and sb > sa:
                out.append(tb)
        return out

    def copy_window(self):
        """(first, last) time the archive's .part file was seen growing."""
        grew = [tb for (ta, _, za), (tb, _, zb) in zip(self.samples, self.samples[1:])
                if zb is not None and zb != za]
        return (grew[0], grew[-1]) if grew else (None, None)


def history_ids(rpc, **conv):
    """Every message id of a conversation, paging back through history."""
    ids, before = [], None
    while True:
        args = dict(conv, limit=100)
        if before is not None:
            args["before"] = before
        ans = rpc_ok(rpc, "history", **args)
        ids += [(m["from"], m["id"]) for m in ans["messages"]]
        if not ans["more"] or not ans["messages"]:
            return ids
        before = min(m["seq"] for m in ans["messages"])


def test_backup_under_load_restores_every_account_room_and_message(original):
    s = original
    # What the restore must bring back besides messages.
    alice = s.login("alice", client_id="alice@setup")
    arpc = Rpc(alice, "alice")
    token = rpc_ok(arpc, "device_token", device="phone", password=PASSWORD)["token"]
    rpc_ok(arpc, "push_register", device="bot", provider="webhook", url="http://127.0.0.1:9/hook")

    dest = os.path.join(s.top, "bk")
    mon = Monitor(s.datadir, dest)
    load = Load(s)
    load.start()
    mon.thread.start()
    # The backup starts once a third of the load is acknowledged.
    harness.wait_for(lambda: len(load.sent) >= len(LOADERS) * PER_LOADER // 3, 60, what="load under way")
    t_start = time.monotonic()
    r = cli(s.datadir, "backup", dest, "--config", s.conf, timeout=120)
    t_end = time.monotonic()
    load.join()
    mon.stop()
    assert r.rc == OK and r.err == "", r
    assert r.out.splitlines()[-1].startswith("backup of %s in %s: " % (s.datadir, dest)), r

    # Ingest went on while the archive's snapshot was copied, and never paused long.
    c0, c1 = mon.copy_window()
    assert c0 is not None, "archive.db.part never seen growing"
    during_copy = mon.commits(c0, c1)
    commits = mon.commits(t_start, t_end)
    gaps = [b - a for a, b in zip([t_start] + commits, commits + [t_end])]
    print("backup %.2f s, archive copy %.2f s with %d commits, %d commits during the backup,"
          " largest gap %.3f s" % (t_end - t_start, c1 - c0, len(during_copy), len(commits), max(gaps)))
    assert during_copy, "no commit while archive.db was copied (%.2f s)" % (c1 - c0)
    assert max(gaps) < MAX_COMMIT_GAP_S, gaps

    # The MANIFEST: every file, with its checksum; the journal included.
    with open(os.path.join(dest, "MANIFEST")) as f:
        manifest = json.load(f)
    paths = [e["path"] for e in manifest["files"]]
    # The journal before archive.db (an acknowledged message is in one or
    # the other), push.db before archive.db (its cursor is an archive seq).
    assert paths[:4] == ["archive.journal", "push.db", "archive.db", "auth.db"], paths
    assert {"auth.db", "push.db", "archiver.pw", "vapid.pem", "config/archiver.conf"} <= set(paths), paths
    for e in manifest["files"]:
        with open(os.path.join(dest, e["path"]), "rb") as f:
            data = f.read()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (e["size"], e["sha256"]), e["path"]
    assert os.stat(dest).st_mode & 0o777 == 0o700
    assert all(os.stat(os.path.join(dest, p)).st_mode & 0o777 == 0o600 for p in paths + ["MANIFEST"])

    before = {k for k, at in load.acked.items() if at < t_start}
    snap = sqlite3.connect("file:%s?immutable=1" % os.path.join(dest, "archive.db"), uri=True)
    in_snapshot = set(snap.execute("SELECT sender, id FROM messages WHERE sender LIKE 'l%'").fetchall())
    snap.close()
    print("journal copy %d bytes; acknowledged before the backup: %d, of which %d only in the journal's copy" % (
        os.path.getsize(os.path.join(dest, "archive.journal")), len(before), len(before - in_snapshot)))
    assert len(before) >= len(LOADERS) * PER_LOADER // 4, len(before)
    assert len(load.acked) == len(LOADERS) * PER_LOADER

    # Restore into an empty folder and serve it with a new broker and archiver.
    new = os.path.join(s.top, "restored")
    t0 = time.monotonic()
    r = cli(new, "restore", dest, timeout=120)
    print("restore %.2f s" % (time.monotonic() - t0))
    assert r.rc == OK and r.err == "", r
    modes = {p: os.stat(os.path.join(new, p)).st_mode & 0o777 for p in os.listdir(new)}
    assert modes == {"archive.journal": 0o600, "archive.db": 0o640, "auth.db": 0o640, "push.db": 0o640,
                     "archiver.pw": 0o600, "vapid.pem": 0o600}, modes
    assert os.stat(new).st_mode & 0o777 == 0o750
    t = Stack(new, os.path.join(dest, "config", "archiver.conf"))
    failed = True
    try:
        t.start()
        for u in PEOPLE:
            t.login(u)
        assert t.client("bob", "not-" + PASSWORD).connect() != 0
        t.login("alice", token, client_id="alice@phone")

        rpcs = {u: Rpc(t.login(u), u) for u in ("alice", "bob", "carol", "dave", "l0", "l1")}
        for u, rooms in (("alice", {"hall", "den"}), ("bob", {"den"}), ("l0", {"hall"})):
            got = {x["room"]: set(x["members"]) for x in rpc_ok(rpcs[u], "rooms")["rooms"]}
            assert got == {name: set(ROOMS[name]) for name in rooms}, (u, got)
        assert rpc_ok(rpcs["carol"], "blocked")["users"] == ["dave"]
        targets = rpc_ok(rpcs["alice"], "push_targets")["targets"]
        assert [(x["device"], x["provider"]) for x in targets] == [("bot", "webhook")], targets

        # Every message acknowledged before the backup began, once.
        stored = read_db(os.path.join(new, "archive.db"),
                         "SELECT sender, id, count(*) FROM messages WHERE sender LIKE 'l%' GROUP BY sender, id")
        assert [x for x in stored if x[2] != 1] == [], "stored twice"
        have = {(a, b) for a, b, _ in stored}
        missing = sorted(before - have)
        assert not missing, "%d acknowledged before the backup are missing: %s" % (len(missing), missing[:5])
        assert have <= set(load.sent), sorted(have - set(load.sent))[:5]
        # ... and history gives them: l0's DMs with l1 and the room.
        dm = history_ids(rpcs["l1"], **{"with": "l0"})
        want = {k for k in before if k[0] == "l0" and load.sent[k] == ("dm", "l1")}
        assert want and want <= set(dm) and len(dm) == len(set(dm)), (len(want), len(dm))
        hall = history_ids(rpcs["l0"], room="hall")
        want = {k for k in before if load.sent[k] == ("room", "hall")}
        assert want and want <= set(hall) and len(hall) == len(set(hall)), (len(want), len(hall))

        # The block is in force on the new broker: dave's DM to carol is
        # refused, his next one to bob is stored.
        dave = rpcs["dave"].c
        dave.publish(inbox("carol", "dave"), harness.envelope("blocked?", id="d-to-carol"))
        dave.publish(inbox("bob", "dave"), harness.envelope("hello", id="d-to-bob"))
        harness.wait_for(lambda: read_db(os.path.join(new, "archive.db"),
                                         "SELECT 1 FROM messages WHERE id='d-to-bob'"), 20,
                         what="dave's DM to bob stored")
        assert read_db(os.path.join(new, "archive.db"), "SELECT 1 FROM messages WHERE id='d-to-carol'") == []
        failed = False
    finally:
        print(t.stop(failed=failed))


# ---- bad inputs ----

@pytest.fixture
def folder(datadir):
    """A data folder made by init, with a user, beside room for backups."""
    d = os.path.join(datadir, "var")
    assert cli(d, "init").rc == OK
    assert cli(d, "user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n").rc == OK
    return d


@pytest.fixture
def backup(folder, datadir):
    bk = os.path.join(datadir, "bk")
    r = cli(folder, "backup", bk)
    assert r.rc == OK, r
    return bk


def fails(datadir, rc, *args, says):
    r = cli(datadir, *args)
    assert r.rc == rc and r.out == "", r
    assert r.err.startswith("Error: ") and says in r.err, r
    return r


def rewrite_manifest(bk, change):
    path = os.path.join(bk, "MANIFEST")
    with open(path) as f:
        m = json.load(f)
    change(m)
    with open(path, "w") as f:
        json.dump(m, f)


def reseal(bk, rel):
    """Make the MANIFEST agree with bk/rel as it is now (a backup made so)."""
    with open(os.path.join(bk, rel), "rb") as f:
        data = f.read()

    def change(m):
        for e in m["files"]:
            if e["path"] == rel:
                e["size"], e["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    rewrite_manifest(bk, change)


def test_help_and_usage(folder, datadir):
    for cmd in ("backup", "restore"):
        r = cli(folder, cmd, "--help")
        assert r.rc == OK and r.out.startswith("usage: mqchat-archiver [--data DIR] %s " % cmd), r
        r = cli(folder, cmd)
        assert r.rc == USAGE and r.err.startswith("Error: missing the backup folder"), r
    r = cli(folder, "backup", os.path.join(datadir, "x"), "--bogus")
    assert r.rc == USAGE and "unknown option '--bogus'" in r.err, r
    assert not os.path.exists(os.path.join(datadir, "x"))


def test_backup_into_a_folder_that_is_not_empty_is_refused(folder, datadir):
    dest = os.path.join(datadir, "bk")
    os.mkdir(dest)
    with open(os.path.join(dest, "keep"), "w") as f:
        f.write("mine")
    fails(folder, EXISTS, "backup", dest, says="%s is not empty" % dest)
    assert listing(dest) == ["keep"]


def test_backup_of_a_folder_that_does_not_exist(datadir):
    dest = os.path.join(datadir, "bk")
    fails(os.path.join(datadir, "nope"), NODB, "backup", dest, says="nope: no such folder: nothing to back up")
    assert not os.path.exists(dest)


def test_backup_into_an_empty_folder_and_a_missing_config(folder, datadir):
    dest = os.path.join(datadir, "bk")
    os.mkdir(dest)
    fails(folder, RUNTIME, "backup", dest, "--config", os.path.join(datadir, "missing.conf"),
          says="missing.conf: No such file or directory")
    assert listing(dest) == []
    r = cli(folder, "backup", dest, "--json")
    assert r.rc == OK, r
    assert json.loads(r.out)["format"] == "mqchat-backup"
    assert "MANIFEST" in listing(dest)


def test_backup_of_a_store_newer_than_the_program_writes_nothing(folder, datadir):
    db = sqlite3.connect(os.path.join(folder, "auth.db"))
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    dest = os.path.join(datadir, "bk")
    fails(folder, NODB, "backup", dest, says="auth.db: user store schema version 99 is newer than this program's (3)")
    assert not os.path.exists(dest)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root to run as nobody")
def test_backup_of_an_unreadable_folder_says_permission_denied(folder, datadir):
    open_dir = os.path.join(datadir, "open")
    os.mkdir(open_dir)
    os.chmod(open_dir, 0o777)
    dest = os.path.join(open_dir, "bk")
    p = subprocess.run(["runuser", "-u", "nobody", "--", harness.ARCHIVER, "--data", folder, "backup", dest],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert p.returncode == RUNTIME, p
    assert p.stderr.startswith("Error: %s/" % folder) and "permission denied" in p.stderr, p.stderr
    assert not os.path.exists(dest)


def test_restore_into_a_folder_that_is_not_empty_is_refused(backup, datadir):
    target = os.path.join(datadir, "new")
    os.mkdir(target)
    with open(os.path.join(target, "auth.db"), "w") as f:
        f.write("theirs")
    fails(target, EXISTS, "restore", backup, says="%s is not empty" % target)
    assert listing(target) == ["auth.db"]
    with open(os.path.join(target, "auth.db")) as f:
        assert f.read() == "theirs"


def test_restore_without_a_manifest_is_refused(backup, datadir):
    os.unlink(os.path.join(backup, "MANIFEST"))
    target = os.path.join(datadir, "new")
    fails(target, INVALID, "restore", backup, says="MANIFEST: no such file: not a backup, or one that did not finish")
    assert not os.path.exists(target)


@pytest.mark.parametrize("text,says", [
    ("{\"format\": \"mqchat-backup\", ", "not valid JSON"),
    ("[]", "not valid JSON"),
    ("{\"format\": \"tarball\", \"format_version\": 1, \"files\": []}", "no \"format\": \"mqchat-backup\""),
    ("{\"format\": \"mqchat-backup\", \"format_version\": 1, \"files\": [{\"path\": \"../../etc/passwd\","
     " \"size\": 1, \"sha256\": \"%s\"}]}" % ("0" * 64), "a file no backup holds: ../../etc/passwd"),
])
def test_restore_with_a_corrupt_manifest_is_refused(backup, datadir, text, says):
    with open(os.path.join(backup, "MANIFEST"), "w") as f:
        f.write(text)
    target = os.path.join(datadir, "new")
    fails(target, INVALID, "restore", backup, says=says)
    assert not os.path.exists(target)


@pytest.mark.parametrize("rel", ["auth.db", "archive.db", "archiver.pw"])
def test_restore_with_a_checksum_mismatch_writes_nothing(backup, datadir, rel):
    with open(os.path.join(backup, rel), "r+b") as f:
        f.seek(-1, os.SEEK_END)
        b = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([b[0] ^ 1]))
    target = os.path.join(datadir, "new")
    os.mkdir(target)   # an empty folder stays empty
    fails(target, INVALID, "restore", backup, says="%s: checksum mismatch" % os.path.join(backup, rel))
    assert listing(target) == []


def test_restore_of_a_file_missing_from_the_backup_writes_nothing(backup, datadir):
    os.unlink(os.path.join(backup, "vapid.pem"))
    target = os.path.join(datadir, "new")
    fails(target, INVALID, "restore", backup, says="vapid.pem: missing (the MANIFEST lists it)")
    assert not os.path.exists(target)


@pytest.mark.parametrize("rel,key,what,known", [
    ("auth.db", "schema_version", "user store", 3),
    ("archive.db", "schema_version", "archive", 2),
    # push.db's version is push_store.c's PUSH_STORE_SCHEMA, which backup.c
    # repeats: this trips if the two part.
    ("push.db", "schema", "push store", 1),
])
def test_restore_of_a_store_newer_than_the_program_is_refused(backup, datadir, rel, key, what, known):
    if rel == "push.db" and not os.path.exists(os.path.join(backup, rel)):
        folder = os.path.join(datadir, "var")
        # The archiver makes push.db at its first start; the CLI opens it too.
        db = sqlite3.connect(os.path.join(folder, "push.db"))
        db.executescript("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
                         "INSERT INTO meta VALUES('schema', '%d');" % known)
        db.close()
        shutil.rmtree(backup)
        assert cli(folder, "backup", backup).rc == OK
    # A backup made by a newer program: the store says so, and the MANIFEST agrees.
    db = sqlite3.connect(os.path.join(backup, rel))
    db.execute("UPDATE meta SET value=? WHERE key=?", (str(known + 1), key))
    db.commit()
    db.close()
    reseal(backup, rel)
    rewrite_manifest(backup, lambda m: [e.update(schema_version=known + 1) for e in m["files"] if e["path"] == rel])
    target = os.path.join(datadir, "new")
    fails(target, NODB, "restore", backup,
          says="%s: %s schema version %d is newer than this program's (%d)" % (
              os.path.join(backup, rel), what, known + 1, known))
    assert not os.path.exists(target)


def test_restore_when_the_manifest_disagrees_with_a_store(backup, datadir):
    rewrite_manifest(backup, lambda m: [e.update(schema_version=2) for e in m["files"] if e["path"] == "auth.db"])
    target = os.path.join(datadir, "new")
    fails(target, INVALID, "restore", backup, says="schema version 3, the MANIFEST says 2")
    assert not os.path.exists(target)


def test_an_older_store_is_restored_as_it_is_and_upgraded_on_first_open(datadir):
    # A folder of the release before: auth.db of schema version 2.
    old = os.path.join(datadir, "old")
    os.mkdir(old)
    assert cli(os.path.join(datadir, "tmp"), "init").rc == OK
    shutil.copy(os.path.join(datadir, "tmp", "archive.db"), old)
    db = sqlite3.connect(os.path.join(old, "auth.db"))
    with open(os.path.join(harness.ROOT, "tests", "fixtures", "userdb_schema_v2.sql")) as f:
        db.executescript(f.read())
    db.execute("INSERT INTO users(name, kind, nick, pwhash, enabled, created) VALUES('bob', 'user', 'bob', ?, 1, ?)",
               (harness.pbkdf2_hash(PASSWORD), int(time.time() * 1000)))
    db.commit()
    db.close()
    bk = os.path.join(datadir, "bk")
    r = cli(old, "backup", bk)
    assert r.rc == OK, r
    assert read_db(os.path.join(old, "auth.db"), "SELECT value FROM meta WHERE key='schema_version'") == [("2",)]
    new = os.path.join(datadir, "new")
    r = cli(new, "restore", bk)
    assert r.rc == OK and "auth.db has schema version 2: it is upgraded to 3 when it is first opened" in r.out, r
    assert read_db(os.path.join(new, "auth.db"), "SELECT value FROM meta WHERE key='schema_version'") == [("2",)]
    r = cli(new, "user", "list")
    assert r.rc == OK and r.out.startswith("bob user enabled bob"), r
    assert read_db(os.path.join(new, "auth.db"), "SELECT value FROM meta WHERE key='schema_version'") == [("3",)]


def test_messages_only_in_the_journal_come_back_from_it(arch_env, datadir):
    # Messages the archiver acknowledged but could not commit (a writer of
    # the test holds archive.db's write lock) are in archive.journal only:
    # the backup's journal has them, its archive.db does not, and the
    # restored folder's archiver stores them once from the journal.
    env = arch_env(users=["alice", "bob"])
    alice = env.user("alice")
    lock = sqlite3.connect(os.path.join(env.datadir, "archive.db"), timeout=10, isolation_level=None)
    journal = os.path.join(env.datadir, "archive.journal")
    ids = ["j-%d" % i for i in range(5)]
    try:
        lock.execute("BEGIN IMMEDIATE")
        # At once: the archiver's first commit waits a second for the lock,
        # then it leaves the broker, which keeps what came later.
        for i in ids:
            alice.publish(inbox("bob", "alice"), harness.envelope("held " + i, id=i), wait=False)

        def journalled():
            with open(journal, "rb") as f:
                data = f.read()
            return all(i.encode() in data for i in ids)
        harness.wait_for(journalled, 20, what="the messages in the journal")
        dest = os.path.join(datadir, "bk")
        r = cli(env.datadir, "backup", dest)
        assert r.rc == OK and r.err == "", r
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    with open(os.path.join(dest, "archive.journal"), "rb") as f:
        data = f.read()
    assert all(i.encode() in data for i in ids), (r.out, data)
    snap = sqlite3.connect("file:%s?immutable=1" % os.path.join(dest, "archive.db"), uri=True)
    assert snap.execute("SELECT count(*) FROM messages WHERE id LIKE 'j-%'").fetchone()[0] == 0
    snap.close()
    new = os.path.join(datadir, "restored")
    r = cli(new, "restore", dest)
    assert r.rc == OK, r
    t = Stack(new, os.path.join(datadir, "empty.conf"))
    open(t.conf, "w").close()
    failed = True
    try:
        t.start()
        t.arch.wait_log("journal replayed: 5 message(s)")
        got = read_db(os.path.join(new, "archive.db"),
                      "SELECT id, count(*) FROM messages WHERE sender='alice' GROUP BY id ORDER BY id")
        assert got == [(i, 1) for i in ids], got
        failed = False
    finally:
        print(t.stop(failed=failed))


@pytest.mark.parametrize("side", ["backup", "restore"])
def test_a_full_disk_leaves_nothing_behind(folder, datadir, side):
    # 12 MB of archive, onto an 8 MB file system: the copy fails half way
    # and what was written is removed, on either side.
    from fault_util import small_fs
    prefill(folder, 3000)
    mnt = os.path.join(datadir, "mnt")
    os.mkdir(mnt)
    with small_fs(mnt, mb=8):
        before = listing(mnt)
        if side == "backup":
            r = cli(folder, "backup", os.path.join(mnt, "bk"))
        else:
            bk = os.path.join(datadir, "bk")
            assert cli(folder, "backup", bk).rc == OK
            r = cli(os.path.join(mnt, "new"), "restore", bk)
        assert r.rc == RUNTIME and r.out == "", r
        assert r.err.startswith("Error: ") and ("full" in r.err or "No space" in r.err), r
        assert listing(mnt) == before


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root to run as nobody")
def test_a_backup_by_the_folders_owner_leaves_out_the_tls_files_it_may_not_read(folder, datadir):
    # As make run leaves it: the folder is the service user's, tls/ is
    # root's with the CA key root's only.
    tls = os.path.join(folder, "tls")
    os.mkdir(tls, 0o755)
    for name, mode in (("ca.crt", 0o644), ("ca.key", 0o600), ("server.key", 0o600)):
        with open(os.path.join(tls, name), "w") as f:
            f.write(name)
        os.chmod(os.path.join(tls, name), mode)
    for p in [folder] + [os.path.join(folder, n) for n in os.listdir(folder) if n != "tls"]:
        os.chown(p, 65534, 65534)
    os.chown(os.path.join(tls, "server.key"), 65534, 65534)
    open_dir = os.path.join(datadir, "open")
    os.mkdir(open_dir)
    os.chmod(open_dir, 0o777)
    dest = os.path.join(open_dir, "bk")
    p = subprocess.run(["runuser", "-u", "nobody", "--", harness.ARCHIVER, "--data", folder, "backup", dest,
                        "--json"], capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert p.returncode == OK, p
    assert p.stderr == "note: %s/ca.key: Permission denied: not in the backup\n" % tls, p.stderr
    m = json.loads(p.stdout)
    assert [e["path"] for e in m["files"] if e["path"].startswith("tls/")] == ["tls/ca.crt", "tls/server.key"]
    assert m["skipped"] == [{"path": "tls/ca.key", "why": "Permission denied"}]
    new = os.path.join(datadir, "new")
    r = cli(new, "restore", dest)
    assert r.rc == OK, r
    assert {n: os.stat(os.path.join(new, "tls", n)).st_mode & 0o777 for n in os.listdir(os.path.join(new, "tls"))} \
        == {"ca.crt": 0o644, "server.key": 0o600}


# ---- the numbering after a restore ----

def last_seq(path):
    """sqlite_sequence's seq for messages in the archive at path (0: none)."""
    row = read_db(path, "SELECT seq FROM sqlite_sequence WHERE name='messages'")
    return row[0][0] if row else 0


def fts_seq(path):
    """The search index's watermark in the archive at path."""
    return int(read_db(path, "SELECT value FROM meta WHERE key='fts_seq'")[0][0])


def test_after_a_restore_an_app_that_saw_later_messages_misses_nothing_new(arch_env, datadir):
    # Messages stored after the backup are lost with the old service, but an
    # app saw them and keeps the largest seq it saw (S_after). The restored
    # archive numbers its next message above every seq the old service can
    # have given, so a sync from max(S_after) brings what is stored after
    # the restore.
    env = arch_env(users=["alice", "bob"])
    alice = env.user("alice")
    for i in range(3):
        alice.publish(inbox("bob", "alice"), harness.envelope("before %d" % i, id="b-%d" % i))
    env.wait_rows(3)
    dest = os.path.join(datadir, "bk")
    r = cli(env.datadir, "backup", dest)
    assert r.rc == OK and r.err == "", r
    for i in range(3):
        alice.publish(inbox("bob", "alice"), harness.envelope("after %d" % i, id="a-%d" % i))
    env.wait_rows(6)
    bob = Rpc(env.user("bob"), "bob")
    seen = rpc_ok(bob, "sync", after=0, limit=100)["messages"]
    s_after = [m["seq"] for m in seen if m["id"].startswith("a-")]
    assert len(s_after) == 3, seen
    backup_seq = last_seq(os.path.join(dest, "archive.db"))
    assert backup_seq < min(s_after), (backup_seq, s_after)
    with open(os.path.join(dest, "MANIFEST")) as f:
        created = json.load(f)["created_ms"]

    new = os.path.join(datadir, "restored")
    t0 = int(time.time() * 1000)
    r = cli(new, "restore", dest)
    t1 = int(time.time() * 1000)
    assert r.rc == OK and r.err == "", r
    # Nothing SQLite made is left beside the stores (the test's reads
    # below make their own).
    assert not [n for n in os.listdir(new) if n.endswith(("-wal", "-shm", "-journal", ".part"))], os.listdir(new)
    base = last_seq(os.path.join(new, "archive.db"))
    lo = backup_seq + max(t0 - created, DAY_MS) * SEQ_PER_MS
    hi = backup_seq + max(t1 - created, DAY_MS) * SEQ_PER_MS
    assert lo <= base <= hi < 2 ** 53, (lo, base, hi)
    assert "archive.db numbers its next message above %d (its last seq %d, " % (base, backup_seq) in r.out, r
    # The search index's watermark moved with it (no seq lies between).
    assert fts_seq(os.path.join(new, "archive.db")) == base

    t = Stack(new, os.path.join(datadir, "empty.conf"))
    open(t.conf, "w").close()
    failed = True
    try:
        t.start()
        a2 = t.login("alice", password=archiver_util.PASSWORD)
        b2 = Rpc(t.login("bob", password=archiver_util.PASSWORD), "bob")
        a2.publish(inbox("bob", "alice"), harness.envelope("hello again", id="n-1"))
        got = harness.wait_for(lambda: read_db(os.path.join(new, "archive.db"),
                                               "SELECT seq FROM messages WHERE id='n-1'"), 20, what="n-1 stored")
        seq = got[0][0]
        assert seq > base > max(s_after), (seq, base, s_after)
        ans = rpc_ok(b2, "sync", after=max(s_after), limit=100)
        assert [(m["id"], m["seq"]) for m in ans["messages"]] == [("n-1", seq)], ans
        # The index catches up at once: its watermark does not walk the gap.
        harness.wait_for(lambda: fts_seq(os.path.join(new, "archive.db")) >= seq, 20, what="n-1 indexed")
        found = rpc_ok(b2, "search", text="hello again")["messages"]
        assert [m["id"] for m in found] == ["n-1"], found
        assert [m["id"] for m in rpc_ok(b2, "search", text="before 1")["messages"]] == ["b-1"]
        failed = False
    finally:
        print(t.stop(failed=failed))


def test_the_numbering_gap_is_a_day_at_least_and_stays_below_2_to_the_53(backup, datadir):
    now = int(time.time() * 1000)
    # A MANIFEST made by a clock that was ahead counts as made now: a day's
    # worth, the least (the backup's archive has no message: last seq 0).
    rewrite_manifest(backup, lambda m: m.update(created_ms=now + 10 * DAY_MS))
    new = os.path.join(datadir, "new1")
    r = cli(new, "restore", backup)
    assert r.rc == OK and r.err == "", r
    assert last_seq(os.path.join(new, "archive.db")) == DAY_MS * SEQ_PER_MS
    # Made three days ago: three days' worth.
    created = int(time.time() * 1000) - 3 * DAY_MS
    rewrite_manifest(backup, lambda m: m.update(created_ms=created))
    new = os.path.join(datadir, "new2")
    t0 = int(time.time() * 1000)
    r = cli(new, "restore", backup)
    t1 = int(time.time() * 1000)
    assert r.rc == OK, r
    assert (t0 - created) * SEQ_PER_MS <= last_seq(os.path.join(new, "archive.db")) <= (t1 - created) * SEQ_PER_MS

    # An archive so far on that a day's worth leaves less than ten years'
    # worth below 2^53 - 1: refused, nothing written. One seq less fits.
    def numbered(seq):
        db = sqlite3.connect(os.path.join(backup, "archive.db"))
        db.execute("DELETE FROM sqlite_sequence WHERE name='messages'")
        db.execute("INSERT INTO sqlite_sequence(name, seq) VALUES('messages', ?)", (seq,))
        db.commit()
        db.close()
        reseal(backup, "archive.db")
    rewrite_manifest(backup, lambda m: m.update(created_ms=now + 10 * DAY_MS))
    numbered(SEQ_LIMIT - DAY_MS * SEQ_PER_MS + 1)
    new = os.path.join(datadir, "new3")
    r = fails(new, INVALID, "restore", backup, says="%s/archive.db: last seq %d, backup begun " % (
        backup, SEQ_LIMIT - DAY_MS * SEQ_PER_MS + 1))
    assert "the largest seq an app holds exactly: check the clock and the MANIFEST's created_ms;" \
        " nothing restored" in r.err, r
    assert not os.path.exists(new)
    numbered(SEQ_LIMIT - DAY_MS * SEQ_PER_MS)
    r = cli(new, "restore", backup)
    assert r.rc == OK, r
    assert last_seq(os.path.join(new, "archive.db")) == SEQ_LIMIT
    # No time of its own: not a backup this program can restore.
    rewrite_manifest(backup, lambda m: m.pop("created_ms"))
    fails(os.path.join(datadir, "new4"), INVALID, "restore", backup, says="no created_ms")
    assert not os.path.exists(os.path.join(datadir, "new4"))


def test_an_older_archive_is_upgraded_by_the_restore_to_move_its_numbering(datadir):
    # A folder of the release before: archive.db of schema version 1, which
    # has no search index yet. The restore upgrades the copy (the backup
    # stays as it was), indexes every text and moves the watermark with the
    # numbering.
    old = os.path.join(datadir, "old")
    assert cli(old, "init").rc == OK
    os.unlink(os.path.join(old, "archive.db"))
    db = sqlite3.connect(os.path.join(old, "archive.db"))
    with open(os.path.join(harness.ROOT, "tests", "fixtures", "archive_schema_v1.sql")) as f:
        db.executescript(f.read())
    last = db.execute("SELECT max(seq) FROM messages").fetchone()[0]
    db.close()
    bk = os.path.join(datadir, "bk")
    assert cli(old, "backup", bk).rc == OK
    new = os.path.join(datadir, "new")
    r = cli(new, "restore", bk)
    assert r.rc == OK and r.err == "", r
    assert "archive.db had schema version 1: it is upgraded to 2\n" in r.out, r
    assert read_db(os.path.join(bk, "archive.db"), "SELECT value FROM meta WHERE key='schema_version'") == [("1",)]
    path = os.path.join(new, "archive.db")
    assert read_db(path, "SELECT value FROM meta WHERE key='schema_version'") == [("2",)]
    assert last_seq(path) == last + DAY_MS * SEQ_PER_MS == fts_seq(path)
    assert read_db(path, "SELECT count(*) FROM msg_fts WHERE msg_fts MATCH '\"lunch\"'") == [(1,)]
