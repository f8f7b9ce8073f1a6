"""A whole data folder of the previous release starts under `make run`
(scripts/run.sh: init, broker + plugin, archiver) and serves every account,
room and message as that release did, with nothing in its stores changed
by the start.

The folder is tests/fixtures/release_folder/: made by the programs of the
release before issue 21 (make_folder.py there says how), its stores dumped
as SQL with something in every table (users of each kind, a disabled and a
deleted one, an operator's room and one run by its members, blocks,
privacy, contacts, invites, settings, a device token; texts, replies,
reactions and a reaction taken back, an edit, deletes by the sender and by
a room admin, receipts, read markers, membership events; push targets,
mutes, previews), and what that release answered each person to every
read op. Its times are moved to now (each by the same amount), so the
archiver's retention finds them as young as they were. Two forms: as that
release left it, and without push.db and vapid.pem (as a release before
push notifications left it: the archiver makes both at its start)."""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time

import pytest

import harness
from archiver_util import Rpc
from test_run_script import Run

FIXTURE = os.path.join(harness.ROOT, "tests", "fixtures", "release_folder")
STORES = ("auth.db", "archive.db", "push.db")
DAY_MS = 86400 * 1000


def manifest():
    with open(os.path.join(FIXTURE, "manifest.json")) as f:
        return json.load(f)


def shifter(t0, delta):
    """A function moving every time of the fixture (ms since the epoch,
    from a month before t0 to a year and a month after it) by delta,
    leaving every other number as it is."""
    low, high = t0 - 31 * DAY_MS, t0 + 400 * DAY_MS

    def move(n):
        return n + delta if low <= n <= high else n

    def text(s):
        return re.sub(r"(?<![0-9A-Za-z_.-])(1[0-9]{12})(?![0-9A-Za-z_.-])",
                      lambda m: str(move(int(m.group(1)))), s)

    def value(v):
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, int):
            return move(v)
        if isinstance(v, list):
            return [value(x) for x in v]
        if isinstance(v, dict):
            return {k: value(x) for k, x in v.items()}
        return v
    return text, value


def make_folder(data, shift_text, with_push):
    """The release's data folder at data (0750, files as its init made them)."""
    os.makedirs(data, mode=0o750)
    for store in STORES if with_push else STORES[:2]:
        with open(os.path.join(FIXTURE, store.replace(".db", ".sql"))) as f:
            sql = shift_text(f.read())
        path = os.path.join(data, store)
        subprocess.run(["sqlite3", path], input=sql, text=True, check=True, timeout=60)
        db = sqlite3.connect(path, isolation_level=None)
        try:
            # As the release left them: in WAL mode.
            assert db.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
        finally:
            db.close()
        os.chmod(path, 0o640)
    for name in ("archiver.pw", "vapid.pem") if with_push else ("archiver.pw",):
        shutil.copy(os.path.join(FIXTURE, name), os.path.join(data, name))
        os.chmod(os.path.join(data, name), 0o600)


def tables(path):
    """Every row of every table (ordered), and the schema, of the store at
    path; the archive's meta 'probe' (a write test of each start) left out."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    try:
        out = {"schema": sorted(db.execute("SELECT type, name, sql FROM sqlite_master").fetchall(),
                                key=lambda r: (r[0], r[1], r[2] or ""))}
        for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
                               " AND sql NOT LIKE 'CREATE VIRTUAL%'").fetchall():
            rows = db.execute('SELECT * FROM "%s"' % t).fetchall()
            if t == "meta":
                rows = [r for r in rows if r[0] != "probe"]
            out[t] = sorted(rows, key=repr)
        return out
    finally:
        db.close()


def subset(want, got, where="answer"):
    """got has everything want has (a later release may add members)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), "%s: %r is not an object" % (where, got)
        for k, v in want.items():
            assert k in got, "%s: %r missing in %r" % (where, k, got)
            subset(v, got[k], "%s.%s" % (where, k))
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), "%s: %r != %r" % (where, got, want)
        for i, (w, g) in enumerate(zip(want, got)):
            subset(w, g, "%s[%d]" % (where, i))
    else:
        assert got == want, "%s: %r != %r" % (where, got, want)


def login(port, user, password, client_id, timeout=10.0):
    """A connected client; the broker may still be loading right after run.sh
    says it runs, so a refusal is retried briefly."""
    deadline = time.monotonic() + timeout
    while True:
        c = harness.Client(port, user, password, client_id=client_id)
        c.c._reconnect_on_failure = False
        code = c.connect()
        if code == 0:
            return c
        c.close()
        assert time.monotonic() < deadline, "%s refused (CONNACK %s)" % (user, code)
        time.sleep(0.4)


def refused(port, user, password):
    c = harness.Client(port, user, password, client_id=user + "@x")
    c.c._reconnect_on_failure = False
    try:
        return c.connect() != 0
    finally:
        c.close()


@pytest.fixture
def runs():
    made = []

    def make(data, port):
        r = Run(data, port)
        made.append(r)
        return r
    yield make
    for r in made:
        r.stop()


@pytest.mark.parametrize("with_push", [pytest.param(True, id="previous-release"),
                                       pytest.param(False, id="without-push-db")])
def test_the_previous_release_folder_starts_under_make_run(datadir, runs, with_push):
    m = manifest()
    delta = int(time.time() * 1000) - m["t0"]
    shift_text, shift_value = shifter(m["t0"], delta)
    data = os.path.join(datadir, "var")
    make_folder(data, shift_text, with_push)
    before = {s: tables(os.path.join(data, s)) for s in STORES if os.path.exists(os.path.join(data, s))}

    port = harness.free_port()
    r = runs(data, port).wait_running()
    assert r.apid is not None, "archiver not started:\n" + r.output()
    out = r.output()
    assert "Error" not in out and "cannot" not in out, out

    # The start (init included) changed nothing in the stores.
    for s, rows in before.items():
        assert tables(os.path.join(data, s)) == rows, "%s changed by the start" % s
    if not with_push:
        harness.wait_for(lambda: os.path.exists(os.path.join(data, "push.db")), what="a new push.db")
        assert os.path.exists(os.path.join(data, "vapid.pem"))

    # Every account logs in as before; the disabled and the deleted one not.
    pw = m["password"]
    people = {}
    try:
        for u in m["users"]:
            if u in m["disabled"] or u in m["deleted"]:
                assert refused(port, u, pw), "%s logged in" % u
                continue
            c = login(port, u, pw, "%s@%s" % (u, "box" if u == "sensor1" else "phone"))
            people[u] = Rpc(c, u)
        # Each person gets at least what the release answered them, op by op.
        for a in m["answers"]:
            if not with_push and a["op"] in ("push_targets", "mutes", "push_settings"):
                continue
            got = people[a["user"]].call(a["op"], **a["args"])
            subset(shift_value(a["answer"]), got, "%s %s %s" % (a["user"], a["op"], a["args"]))
        if not with_push:
            # A new push.db: nobody has a target yet.
            for u in ("bob", "carol"):
                ans = people[u].call("push_targets")
                assert ans["ok"] is True and ans["targets"] == [], ans
        # The device token of the release still opens its device.
        t = m["token"]
        c = login(port, t["user"], t["token"], "%s@%s" % (t["user"], t["device"]))
        c.close()
    finally:
        for p in people.values():
            p.c.close()
