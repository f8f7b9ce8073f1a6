"""test_import.py - `mqchat-archiver import mosquitto-passwd|dynsec|csv`: the
report, exit statuses, files refused whole, --dry-run; then logins through
the real broker and plugin with each original password, and the upgrade of
Mosquitto's hashes to ours after the first login (plugin/loader.c).

Fixtures are made at test time with the real tools: `mosquitto_passwd -c -b`
($7$) and `-H sha512` ($6$), `mosquitto_ctrl dynsec init FILE admin PASSWORD`
(with more clients added to its JSON), and Python's hashlib for more $6$ and
$7$ forms, so the code is tested against Mosquitto's own output and against
an independent reading of the formats.
"""
import base64
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess

import pytest

import harness
from archiver_util import Rpc, arch_env, rpc_fails, rpc_ok  # noqa: F401
from cli_util import RUNTIME, USAGE, NODB, cli, verify_password
from plugin_util import assert_refused, connect, login

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
MOSQUITTO_CTRL = shutil.which("mosquitto_ctrl")

pytestmark = pytest.mark.skipif(MOSQUITTO_PASSWD is None or MOSQUITTO_CTRL is None,
                                reason="mosquitto_passwd / mosquitto_ctrl not installed"
                                " (Debian's mosquitto and mosquitto-clients: make deps)")

# How long the loader may take to store our form after a login (it hashes
# once, ~2-4 ms, then writes; a busy machine is slower).
UPGRADE_BOUND = 10.0


def sha512_form(password, salt=None):
    """Mosquitto's $6$: SHA-512 of password then a 12-byte salt."""
    salt = salt or os.urandom(12)
    h = hashlib.sha512(password.encode() + salt).digest()
    return "$6$%s$%s" % (base64.b64encode(salt).decode(), base64.b64encode(h).decode())


def pbkdf2_form(password, iterations=101, salt=None):
    """Mosquitto's $7$: PBKDF2-HMAC-SHA512, 12-byte salt, 64-byte key."""
    salt = salt or os.urandom(12)
    h = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return "$7$%d$%s$%s" % (iterations, base64.b64encode(salt).decode(), base64.b64encode(h).decode())


def dynsec_client(name, password, iterations=101, **extra):
    """A client of the dynsec JSON as the plugin saves one."""
    salt = os.urandom(12)
    h = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    c = {"username": name, "password": base64.b64encode(h).decode(),
         "salt": base64.b64encode(salt).decode(), "iterations": iterations, "roles": []}
    c.update(extra)
    return c


def mosquitto_passwd(*args):
    r = subprocess.run([MOSQUITTO_PASSWD] + list(args), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r


class Stack:
    """A data folder after `init`, shared by the module's tests; those that
    log in start a broker of their own on it (the `broker` fixture): the
    plugin's throttles count wrong passwords per address, and a module's
    worth of them would lock 127.0.0.1 out."""

    def __init__(self):
        self.datadir = harness.make_datadir()
        self.auth = os.path.join(self.datadir, "auth.db")
        self.broker = None

    def start(self):
        r = cli(self.datadir, "init")
        assert r.rc == 0, r

    def stop(self, failed=False):
        shutil.rmtree(self.datadir, ignore_errors=True)
        return ""

    def path(self, name):
        return os.path.join(self.datadir, name)

    def write(self, name, text, mode="w"):
        with open(self.path(name), mode) as f:
            f.write(text)
        return self.path(name)

    def rows(self, sql, *args):
        db = sqlite3.connect(self.auth, timeout=10)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def users(self):
        return self.rows("SELECT name, kind, nick, pwhash, enabled FROM users ORDER BY name")

    def pwhash(self, name):
        rows = self.rows("SELECT pwhash FROM users WHERE name=?", name)
        return rows[0][0] if rows else None

    def wait_upgraded(self, name, password):
        """Wait (bounded) until name's row holds our form, and check it is
        of password, independently of the C code."""
        h = harness.wait_for(lambda: (self.pwhash(name) or "").startswith("$pbkdf2-sha512$")
                             and self.pwhash(name), UPGRADE_BOUND,
                             what="the row of %s upgraded to $pbkdf2-sha512$" % name)
        assert h.startswith("$pbkdf2-sha512$4300$"), h
        assert verify_password(h, password)
        return h


@pytest.fixture(scope="module")
def st(request):
    yield from harness.serve_stack(request, Stack())


@pytest.fixture
def broker(st, request):
    """A broker with the plugin on the module's data folder, for one test."""
    b = harness.Broker(st.datadir)
    st.broker = b
    try:
        b.start()
        yield b
    finally:
        st.broker = None
        b.stop()
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            print("---- broker log (port %d) ----\n%s" % (b.port, b.output()))


def refused(clients, st, name, password):
    c, code = connect(clients, st.broker, name, password)
    assert_refused(code, False, "%s with %r" % (name, password))
    c.close()


def logs_in(clients, st, name, password):
    login(clients, st.broker, name, password).close()


# ---- mosquitto-passwd ----

def test_passwd_file_import_login_upgrade(st, broker, clients):
    pw = st.path("passwd")
    # The real tool: $7$ (its default, 101 iterations) and $6$ (-H sha512).
    mosquitto_passwd("-c", "-b", pw, "pa-alice", "alice's password")
    mosquitto_passwd("-b", pw, "pa-bob", "b0b:with colon")
    mosquitto_passwd("-H", "sha512", "-b", pw, "pa-carol", "carol pw 6")
    with open(pw) as f:
        made = f.read()
    assert [line.split(":")[1][:3] for line in made.splitlines()] == ["$7$", "$7$", "$6$"]
    # More lines: hashlib's forms, comments, blanks, blanks around the
    # parts, CRLF, and one of each bad kind.
    taken = sha512_form("whatever-1")
    r = cli(st.datadir, "user", "add", "pa-taken", "--password-stdin", stdin="taken-pass\n")
    assert r.rc == 0, r
    lines = [
        "# made by hand",
        "",
        "pa-dave:" + sha512_form("dave's six"),
        "  pa-erin :  " + pbkdf2_form("erin pbkdf2", 1000) + "  \r",
        "Pa-Upper:" + sha512_form("x"),                             # 8: bad name
        "pa-plain:plain-text-password",                             # 9
        "pa-argon:$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g",   # 10
        "pa-short:$6$AQIDBAUGBwgJCgsM$AAAA",                        # 11: malformed $6$
        "pa-zero:" + pbkdf2_form("x").replace("$7$101$", "$7$0$"),  # 12: malformed $7$
        "pa-nohash:",                                               # 13
        "no colon here",                                            # 14
        "pa-dave:" + sha512_form("another"),                        # 15: duplicate
        "pa-taken:" + taken,                                        # 16: exists
    ]
    with open(pw, "a") as f:
        f.write("\n".join(lines) + "\n")
    before = st.users()

    r = cli(st.datadir, "import", "mosquitto-passwd", pw)
    assert r.rc == RUNTIME and r.err == "", r
    assert r.out.splitlines() == [
        pw + ":8: Pa-Upper: invalid name (1..32 of a-z 0-9 _ . -, starting with a letter or digit)",
        pw + ":9: pa-plain: not a password hash (a plain-text password file: hash it with"
        " `mosquitto_passwd -U FILE` first, or import it as CSV)",
        pw + ":10: pa-argon: unsupported password hash $argon2id$...: mqchat reads Mosquitto's $6$ and $7$",
        pw + ":11: pa-short: malformed $6$ password hash (Mosquitto 2.0 would not read it either)",
        pw + ":12: pa-zero: malformed $7$ password hash (Mosquitto 2.0 would not read it either)",
        pw + ":13: pa-nohash: no password hash",
        pw + ":14: no colon here: not a name:hash line",
        pw + ":15: pa-dave: duplicate of line 6",
        pw + ":16: pa-taken: already exists",
        "imported 5, skipped 9",
    ], r
    after = st.users()
    new = {u[0]: u for u in after if u not in before}
    assert sorted(new) == ["pa-alice", "pa-bob", "pa-carol", "pa-dave", "pa-erin"]
    for name, kind, nick, h, enabled in new.values():
        assert (kind, nick, enabled) == ("user", name, 1)
    # Stored as Mosquitto made them, until the first login.
    for line in made.splitlines():
        name, h = line.split(":", 1)
        assert new[name][3] == h
    assert new["pa-erin"][3].startswith("$7$1000$")

    passwords = {"pa-alice": "alice's password", "pa-bob": "b0b:with colon",
                 "pa-carol": "carol pw 6", "pa-dave": "dave's six", "pa-erin": "erin pbkdf2"}
    for name, password in passwords.items():
        refused(clients, st, name, password + "x")
        assert st.pwhash(name) == new[name][3], "a refused login changed the hash"
        logs_in(clients, st, name, password)
    for name, password in passwords.items():
        st.wait_upgraded(name, password)
        # Again, now through our form (the cached credential no longer
        # matches the stored hash, so this is a full check).
        logs_in(clients, st, name, password)
    refused(clients, st, "pa-bob", "alice's password")
    st.broker.wait_log("Mosquitto's $7$ password hash replaced by $pbkdf2-sha512$")
    out = st.broker.output()
    for password in passwords.values():
        assert password not in out

    # The same file again: everything is there already.
    again = cli(st.datadir, "import", "mosquitto-passwd", pw)
    assert again.rc == RUNTIME, again
    assert again.out.splitlines()[-1] == "imported 0, skipped 14"
    for name in ("pa-alice", "pa-bob", "pa-carol", "pa-dave", "pa-erin"):
        assert any(line.endswith(": %s: already exists" % name) for line in again.out.splitlines()), again


def test_refused_and_disabled_logins_do_not_upgrade(st, broker, clients):
    """Only a login that succeeds asks for the new hash; requests are
    served in order, so once a later user's row is upgraded, an earlier
    request would have been too."""
    pw = st.write("passwd-order", "od-first:%s\nod-off:%s\nod-last:%s\n" % (
        sha512_form("first-password"), pbkdf2_form("off-password"), sha512_form("last-password")))
    assert cli(st.datadir, "import", "mosquitto-passwd", pw).rc == 0
    assert cli(st.datadir, "user", "disable", "od-off").rc == 0
    first, off = st.pwhash("od-first"), st.pwhash("od-off")
    refused(clients, st, "od-first", "wrong-password")
    refused(clients, st, "od-off", "off-password")       # right password, disabled
    logs_in(clients, st, "od-last", "last-password")
    st.wait_upgraded("od-last", "last-password")
    assert st.pwhash("od-first") == first
    assert st.pwhash("od-off") == off


def test_login_burst_upgrades_every_row(st, broker, clients):
    """Logins of imported accounts as fast as one client can make them:
    the kernel queues only 10 requests on the loader's socket (~40 ms of
    rehashing), so the loader takes them into its own queue as they come;
    every row is upgraded (none dropped)."""
    n = 400
    pw = st.write("passwd-burst", "".join(
        "bu-%03d:%s\n" % (i, pbkdf2_form("burst-password-%d" % i, salt=b"burst-salt12"))
        for i in range(n)))
    assert cli(st.datadir, "import", "mosquitto-passwd", pw).out == "imported %d, skipped 0\n" % n
    for i in range(n):
        c = harness.Client(broker.port, "bu-%03d" % i, "burst-password-%d" % i)
        assert c.connect() == 0
        c.close()
    harness.wait_for(lambda: st.rows("SELECT count(*) FROM users WHERE name LIKE 'bu-%'"
                                     " AND pwhash LIKE '$pbkdf2-sha512$%'")[0][0] == n,
                     UPGRADE_BOUND * 3, what="all %d rows upgraded" % n)


# ---- dynsec ----

def test_dynsec_import(st, broker, clients):
    path = st.path("dynsec.json")
    r = subprocess.run([MOSQUITTO_CTRL, "dynsec", "init", path, "ds-admin", "Adm1n-password"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    with open(path) as f:
        conf = json.load(f)
    assert [c["username"] for c in conf["clients"]] == ["ds-admin"]
    conf["clients"] += [
        dynsec_client("ds-bea", "bea password", textname="Bea B."),
        dynsec_client("ds-cy", "cy password 2k", iterations=2000, clientid="cy-device"),
        dynsec_client("ds-off", "off password", disabled=True),
        dynsec_client("ds-look", "look password", textname="BEA b"),  # looks like ds-bea's nick
        {"username": "ds-nopw", "roles": [{"rolename": "admin"}]},
        dynsec_client("ds-half", "x"),
        dynsec_client("DS-Caps", "x"),
        dynsec_client("ds-bad-salt", "x"),
        dict(dynsec_client("ds-it", "x"), iterations=0),
        {"textname": "nobody"},
        "not an object",
        dynsec_client("ds-bea", "again"),
    ]
    del conf["clients"][6]["salt"]
    conf["clients"][8]["salt"] = base64.b64encode(b"short").decode()
    conf["groups"] = [{"groupname": "ops", "clients": [{"username": "ds-cy"}]}]
    with open(path, "w") as f:
        json.dump(conf, f, indent=1)
    before = st.users()

    r = cli(st.datadir, "import", "dynsec", path)
    assert r.rc == RUNTIME and r.err == "", r
    assert r.out.splitlines() == [
        path + ":clients[4]: ds-look: note: textname 'BEA b' looks like the nick of account"
        " 'ds-bea': the nick is the name",
        path + ":clients[5]: ds-nopw: no password (this client cannot log in with one)",
        path + ":clients[6]: ds-half: incomplete password: needs password, salt and iterations",
        path + ":clients[7]: DS-Caps: invalid name (1..32 of a-z 0-9 _ . -, starting with a letter or digit)",
        path + ":clients[8]: ds-bad-salt: malformed password: the salt must be 12 bytes and the"
        " password 64, in base64",
        path + ":clients[9]: ds-it: malformed password: password and salt must be base64 strings,"
        " iterations 1..10000000",
        path + ":clients[10]: (no name): no username",
        path + ":clients[11]: (no name): not an object",
        path + ":clients[12]: ds-bea: duplicate of clients[1]",
        path + ": not imported: 1 role, 1 group, the roles of 2 clients, the fixed client id of"
        " 1 client, defaultACLAccess (mqchat's access rules are its chat contract,"
        " docs/PROTOCOL.md: make rooms and members with `mqchat-archiver room`)",
        "imported 5 (1 disabled), skipped 8",
    ], r
    new = {u[0]: u for u in st.users() if u not in before}
    assert sorted(new) == ["ds-admin", "ds-bea", "ds-cy", "ds-look", "ds-off"]
    # mosquitto_ctrl writes "textName"; the plugin reads it in any case.
    assert new["ds-admin"][2] == "Dynsec admin user"
    assert new["ds-bea"][2] == "Bea B." and new["ds-look"][2] == "ds-look"
    assert [new[n][4] for n in sorted(new)] == [1, 1, 1, 1, 0]
    admin = conf["clients"][0]
    assert new["ds-admin"][3] == "$7$%d$%s$%s" % (admin["iterations"], admin["salt"], admin["password"])

    refused(clients, st, "ds-off", "off password")
    for name, password in [("ds-admin", "Adm1n-password"), ("ds-bea", "bea password"),
                           ("ds-cy", "cy password 2k")]:
        refused(clients, st, name, password[:-1])
        logs_in(clients, st, name, password)
        st.wait_upgraded(name, password)
        logs_in(clients, st, name, password)
    assert st.pwhash("ds-off").startswith("$7$101$")


# ---- csv ----

def test_csv_import(st, broker, clients):
    rows = [
        "name,password,display_name",
        'cs-ann,"pass,word ""quoted""",Ann A.',
        "cs-ben,ben-password",
        'cs-cat,cat-password,"Cat, the ""Great"""',
        "cs-dot,short",
        "cs-eve,mqt1." + "A" * 43,
        "cs-fay,fay-password,Ann-A",
        "cs-gus",
        "cs-hal,hal-password,x,y",
        "cs-ivy,,Ivy",
        "cs-ann,again-password",
        'cs-jo,jo-password,"two\r\nlines"',
        "cs-kim," + "k" * 1025,
        "Cs-Lee,lee-password",
        "cs-mo,mo-password,",
        "",
        "cs-ned,ned-password,Ned",
    ]
    data = "\ufeff" + "\r\n".join(rows) + "\r\n"
    path = st.write("users.csv", data.encode(), mode="wb")
    before = st.users()

    r = cli(st.datadir, "import", "csv", path)
    assert r.rc == RUNTIME and r.err == "", r
    assert r.out.splitlines() == [
        path + ":5: cs-dot: password too short (at least 8 bytes)",
        path + ":6: cs-eve: a password may not have the form of a device token"
        " (mqt1. and 43 characters of A-Z a-z 0-9 _ -)",
        path + ":7: cs-fay: the nick 'Ann-A' looks like the nick of account 'cs-ann'",
        path + ":8: cs-gus: expected name,password[,display_name]: 1 field",
        path + ":9: cs-hal: expected name,password[,display_name]: more than 3 fields",
        path + ":10: cs-ivy: no password",
        path + ":11: cs-ann: duplicate of line 2",
        path + ":12: cs-jo: invalid display name 'two\\x0d\\x0alines': U+000D at character 4 is a"
        " control character",
        path + ":14: cs-kim: password too long (at most 1024 bytes)",
        path + ":15: Cs-Lee: invalid name (1..32 of a-z 0-9 _ . -, starting with a letter or digit)",
        "imported 5, skipped 10",
    ], r
    new = {u[0]: u for u in st.users() if u not in before}
    assert {n: (u[2], u[4]) for n, u in new.items()} == {
        "cs-ann": ("Ann A.", 1), "cs-ben": ("cs-ben", 1), "cs-cat": ('Cat, the "Great"', 1),
        "cs-mo": ("cs-mo", 1), "cs-ned": ("Ned", 1)}
    passwords = {"cs-ann": 'pass,word "quoted"', "cs-ben": "ben-password", "cs-cat": "cat-password",
                 "cs-mo": "mo-password", "cs-ned": "ned-password"}
    for name, password in passwords.items():
        h = new[name][3]
        assert h.startswith("$pbkdf2-sha512$4300$") and verify_password(h, password), name
        refused(clients, st, name, password + "!")
        logs_in(clients, st, name, password)

    # From stdin, no header, LF only; the same names again are skipped.
    r = cli(st.datadir, "import", "csv", "-", stdin="cs-ben,ben-password\ncs-pia,pia-password\n")
    assert r.rc == RUNTIME, r
    assert r.out.splitlines() == ["stdin:1: cs-ben: already exists", "imported 1, skipped 1"]
    logs_in(clients, st, "cs-pia", "pia-password")


def test_clean_import_exits_0(st):
    r = cli(st.datadir, "import", "csv", "-", stdin="name,password\nok-one,password-one\n")
    assert (r.rc, r.out, r.err) == (0, "imported 1, skipped 0\n", ""), r


# ---- files refused whole, --dry-run, usage ----

BAD_FILES = [
    ("csv", b"bf-a,password-a\nbf-b,\"unterminated\n",
     "Error: {f}:2: a quoted field is not closed; nothing imported"),
    ("csv", b"bf-a,password-a\nbf-b,pass\"word\n",
     "Error: {f}:2: a quote inside an unquoted field (RFC 4180: quote the whole field and double"
     " the quote); nothing imported"),
    ("csv", b"bf-a,password-a\nbf-b,\"pass\"word\n",
     "Error: {f}:2: text after a closing quote (RFC 4180: a quoted field ends at a comma or the"
     " end of the line); nothing imported"),
    ("dynsec", b'{"clients": [{"username": "bf-a", ', None),
    ("dynsec", b'{"clients": {"username": "bf-a"}}',
     "Error: {f}: not a dynamic-security file: \"clients\" is not an array; nothing imported"),
    ("dynsec", b'[{"username": "bf-a"}]',
     "Error: {f}: not a dynamic-security file: the top level is not an object; nothing imported"),
]


@pytest.mark.parametrize("fmt,data,err", BAD_FILES)
def test_bad_file_imports_nothing(st, fmt, data, err):
    path = st.write("bad-file", data, mode="wb")
    before = st.users()
    r = cli(st.datadir, "import", fmt, path)
    assert r.rc == RUNTIME and r.out == "", r
    line = r.err.splitlines()[0]
    if err is None:
        assert line.startswith("Error: %s:1: not JSON: " % path) and line.endswith("; nothing imported"), r
    else:
        assert line == err.format(f=path), r
    assert st.users() == before


def test_missing_file_and_usage(st):
    before = st.users()
    r = cli(st.datadir, "import", "mosquitto-passwd", st.path("no-such-file"))
    assert r.rc == RUNTIME and r.out == "", r
    assert r.err == "Error: cannot read %s: No such file or directory\n" % st.path("no-such-file")
    for args in (["import"], ["import", "xml", "f"], ["import", "csv"], ["import", "csv", "a", "b"],
                 ["import", "csv", "f", "--force"]):
        r = cli(st.datadir, *args)
        assert r.rc == USAGE and r.out == "" and r.err.startswith("Error: "), (args, r)
    r = cli(st.datadir, "import", "--help")
    assert r.rc == 0 and "import mosquitto-passwd FILE [--dry-run]" in r.out, r
    # No store: the CLI's usual answer.
    r = cli(st.path("nowhere"), "import", "csv", "-", stdin="nd-a,password-a\n")
    assert r.rc == NODB, r
    assert st.users() == before


def test_dry_run_changes_nothing(st):
    pw = st.write("dry-passwd", "dr-a:%s\ndr-b:plain\n" % sha512_form("dry-password"))
    dyn = st.write("dry-dynsec.json", json.dumps({"clients": [dynsec_client("dr-c", "dry-c")]}))
    csv = st.write("dry.csv", "dr-d,dry-password-d\ndr-e,short\n")
    before = st.users()
    version = st.rows("PRAGMA data_version")
    for fmt, path, out, rc in [
            ("mosquitto-passwd", pw, [pw + ":2: dr-b: not a password hash (a plain-text password"
                                      " file: hash it with `mosquitto_passwd -U FILE` first, or"
                                      " import it as CSV)",
                                      "would import 1, skip 1 (dry run: nothing changed)"], RUNTIME),
            ("dynsec", dyn, ["would import 1, skip 0 (dry run: nothing changed)"], 0),
            ("csv", csv, [csv + ":2: dr-e: password too short (at least 8 bytes)",
                          "would import 1, skip 1 (dry run: nothing changed)"], RUNTIME)]:
        r = cli(st.datadir, "import", fmt, path, "--dry-run")
        assert r.rc == rc and r.err == "" and r.out.splitlines() == out, r
    assert st.users() == before
    assert st.rows("PRAGMA data_version") == version
    # And for real, the same outcome.
    r = cli(st.datadir, "import", "csv", csv)
    assert r.out.splitlines()[-1] == "imported 1, skipped 1", r


def test_locked_store_imports_nothing(st):
    """The write fails (the lock is held past the busy timeout): nothing of
    the file is in the store."""
    csv = st.write("locked.csv", "lk-a,password-a\nlk-b,password-b\n")
    before = st.users()
    db = sqlite3.connect(st.auth, timeout=10, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        r = cli(st.datadir, "import", "csv", csv, env={"MQCHAT_BUSY_TIMEOUT_MS": "200"})
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert r.rc == RUNTIME and r.out == "", r
    assert r.err == "Error: database is locked\nnothing was imported\n", r
    assert st.users() == before


# ---- the rehash's compare-and-set; the archiver's passwd RPC ----

def test_rehash_leaves_a_changed_row(datadir, store, make_broker, clients):
    """The broker verified against its snapshot's hash; if the row holds
    another one by then (a password changed meanwhile), the loader does not
    overwrite it. A broker that does not look for changes keeps the old
    snapshot for the test."""
    now = 1700000000000
    for name, h in [("cas-a", sha512_form("old-password")), ("cas-b", pbkdf2_form("b-password"))]:
        store.sql("INSERT INTO users(name, kind, nick, pwhash, enabled, created) VALUES(?,?,?,?,1,?)",
                  name, "user", name, h, now)
    b = make_broker(plugin_opts={"watch": "off", "reload_ms": 60000})
    changed = sha512_form("new-password")
    store.sql("UPDATE users SET pwhash=? WHERE name='cas-a'", changed)
    login(clients, b, "cas-a", "old-password").close()     # the snapshot's hash
    login(clients, b, "cas-b", "b-password").close()
    h = harness.wait_for(lambda: store.sql("SELECT pwhash FROM users WHERE name='cas-b'")[0][0]
                         .startswith("$pbkdf2-sha512$"), UPGRADE_BOUND, what="cas-b upgraded")
    assert h
    assert store.sql("SELECT pwhash FROM users WHERE name='cas-a'")[0][0] == changed


def test_passwd_rpc_with_legacy_hash(arch_env, store):
    """The archiver checks the old password of `passwd` with pwhash__verify:
    a row still holding Mosquitto's form works, and the new one is ours."""
    env = arch_env(users=["rp-ann"])
    c = env.user("rp-ann")
    rpc = Rpc(c, "rp-ann")
    store.sql("UPDATE users SET pwhash=? WHERE name='rp-ann'", sha512_form("mosquitto-pass"))
    rpc_fails(rpc, "bad_password", "passwd", old="not-the-password", new="brand-new-pass")
    rpc_ok(rpc, "passwd", old="mosquitto-pass", new="brand-new-pass")
    h = store.sql("SELECT pwhash FROM users WHERE name='rp-ann'")[0][0]
    assert h.startswith("$pbkdf2-sha512$") and verify_password(h, "brand-new-pass")
