"""test_run_layout.py - what `make run` lays out, and that the broker's user
cannot reach root through it (docs/SECURITY.md, "The data folder's owner").

Started as root, scripts/run.sh runs the broker and the archiver as the
`mosquitto` user, which owns the data folder DATA. Whatever root reads,
writes or runs must be out of that user's reach: the broker's config and
run.lock live in DATA.run beside it, root's. The table of
docs/ARCHITECTURE.md ("Data folder") says who owns what; it is read from
the file and compared with the folders the real script makes, entry by
entry, and nothing else may be there. The previous release wrote a root
config (and conf.d/, which the broker read as root) into DATA, where
`mosquitto` could replace it: these tests fail on that layout.

The attacks are played by planting files owned by `mosquitto`, as that
user could have (it owns DATA)."""
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess

import pytest

import harness
from test_run_script import Run, alive, proc_uid

ARCH = os.path.join(harness.ROOT, "docs", "ARCHITECTURE.md")
SECRET = "root-only-secret-line\n"
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                               reason="needs root (the attack is on root)")
# Entries that come and go: SQLite's while a connection is open, the
# loader's mark from the broker's first snapshot, the broker's persistence
# from its first save, the node's spool (only with SPOOL_MB), and the bus's
# inbox, interest and record of what it took (only on a node of several,
# with the bus).
OPTIONAL = ("-wal", "-shm", "auth.db-applied", "mosquitto/mosquitto.db", "DATA/spool",
            "DATA/inbox", "DATA/bus.interest", "DATA/bus.seen")


def broker_user():
    try:
        return pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.skip("no mosquitto user")


def table():
    """{path relative to the folder above DATA ("DATA/auth.db"): (owner, mode)}
    from the ownership table of docs/ARCHITECTURE.md."""
    with open(ARCH) as f:
        text = f.read()
    section = text.split("## Data folder", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`DATA"):
            continue
        mode = int(re.match(r"(0[0-7]{3})", cells[2]).group(1), 8)
        for path in re.findall(r"`(DATA[^`]*)`", cells[0]):
            rows[path.rstrip("/")] = (cells[1], mode)
    assert "DATA/auth.db" in rows and "DATA.run/mosquitto.conf" in rows, rows
    return rows


def entries(root, label):
    """Every path under root (root itself included), named as the table
    names them: label ("DATA" or "DATA.run") and the path inside root."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in [d] + [os.path.join(d, x) for x in dirs + files]:
            rel = os.path.relpath(n, root)
            out[label if rel == "." else label + "/" + rel] = n
    return out


def check_layout(data, owner_uid):
    """DATA and DATA.run against the table: owner and mode of every listed
    entry, every entry listed. Returns the list of what differs."""
    rows = table()
    found = entries(data, "DATA")
    found.update(entries(data + ".run", "DATA.run"))
    bad = []
    for name, path in sorted(found.items()):
        if name not in rows:
            bad.append("%s is not in the table" % name)
            continue
        owner, mode = rows[name]
        st = os.lstat(path)
        want_uid = owner_uid if owner == "mosquitto" else 0
        if st.st_uid != want_uid:
            bad.append("%s belongs to uid %d, the table says %s" % (name, st.st_uid, owner))
        if stat.S_IMODE(st.st_mode) != mode:
            bad.append("%s is %o, the table says %o" % (name, stat.S_IMODE(st.st_mode), mode))
        if stat.S_ISLNK(st.st_mode):
            bad.append("%s is a link" % name)
    for name in rows:
        if name not in found and not name.endswith(OPTIONAL):
            bad.append("%s is missing" % name)
    return bad


def may_change(path, user):
    """The first of path and the folders above it that user may change (own
    it, or write it without the sticky bit), or None."""
    groups = {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem}
    groups.add(user.pw_gid)
    p = os.path.realpath(path)
    while True:
        st = os.stat(p)
        m = st.st_mode
        writable = ((st.st_uid == user.pw_uid and m & stat.S_IWUSR)
                    or (st.st_gid in groups and m & stat.S_IWGRP) or m & stat.S_IWOTH)
        if st.st_uid == user.pw_uid or (writable and not (stat.S_ISDIR(m) and m & stat.S_ISVTX)):
            return p
        if p == "/":
            return None
        p = os.path.dirname(p)


def broker_config(bpid):
    """The config file the broker was started with (its -c argument)."""
    with open("/proc/%d/cmdline" % bpid, "rb") as f:
        argv = f.read().split(b"\0")
    return argv[argv.index(b"-c") + 1].decode()


@pytest.fixture
def root_dir():
    d = harness.make_datadir()   # 0755: the broker's user may reach it
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def runs():
    made = []

    def make(data, **kw):
        r = Run(data, harness.free_port(), **kw)
        made.append(r)
        return r
    yield made, make
    for r in made:
        r.stop()


def start(runs, data, **kw):
    r = runs[1](data, **kw).wait_running()
    out = r.output()
    if "the broker keeps running as root" in out:
        pytest.skip("the checkout is out of the broker's user's reach here:\n" + out)
    return r


def stop(r):
    r.proc.send_signal(signal.SIGTERM)
    assert r.wait_exit() == 0, r.output()
    assert not alive(r.bpid) and not alive(r.apid)


def plant(path, text, uid, gid, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    os.chown(path, uid, gid)


def secret_file(d):
    """A file only root may read, in a folder only root may enter."""
    private = os.path.join(d, "private")
    os.mkdir(private, 0o700)
    target = os.path.join(private, "root-only")
    plant(target, SECRET, 0, 0, 0o600)
    return target


def untouched(target):
    st = os.stat(target)
    with open(target) as f:
        return f.read() == SECRET and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0


@ROOT_ONLY
def test_make_run_as_root_lays_out_what_the_table_says(runs, root_dir):
    m = broker_user()
    data = os.path.join(root_dir, "var")
    r = start(runs, data)
    # Both run as mosquitto, from their start.
    assert proc_uid(r.bpid) == m.pw_uid and proc_uid(r.apid) == m.pw_uid
    assert check_layout(data, m.pw_uid) == []
    # The config the broker read, and every folder above it, are out of
    # mosquitto's reach; no include_dir leads elsewhere.
    conf = broker_config(r.bpid)
    assert os.path.realpath(conf) == os.path.realpath(data + ".run/mosquitto.conf")
    assert may_change(conf, m) is None, may_change(conf, m)
    with open(conf) as f:
        assert not re.search(r"^include_dir", f.read(), re.M)
    stop(r)
    # The broker's first save, and the second start on the same folder.
    assert os.path.exists(os.path.join(data, "mosquitto", "mosquitto.db"))
    assert check_layout(data, m.pw_uid) == []
    r = start(runs, data)
    assert check_layout(data, m.pw_uid) == []


@ROOT_ONLY
def test_make_run_upgrades_a_folder_of_the_previous_release(runs, root_dir):
    m = broker_user()
    data = os.path.join(root_dir, "var")
    r = start(runs, data)
    assert subprocess.run([harness.ARCHIVER, "--data", data, "user", "add", "alice",
                           "--password-stdin"], input="alice-secret-1\n", text=True,
                          capture_output=True, timeout=30).returncode == 0
    stop(r)
    # What the previous release left: root's config, conf.d and run.lock in
    # DATA, no DATA.run; from an older one, root's archive and password file.
    shutil.rmtree(data + ".run")
    os.mkdir(os.path.join(data, "conf.d"), 0o755)
    plant(os.path.join(data, "conf.d", "local.conf"), "# Written by scripts/run.sh\n", 0, 0)
    plant(os.path.join(data, "mosquitto-run.conf"), "listener 1 127.0.0.1\n", 0, 0)
    plant(os.path.join(data, "run.lock"), "1 make run (scripts/run.sh)\n", 0, 0)
    for f in ("archive.db", "archiver.pw", "mosquitto.log"):
        os.chown(os.path.join(data, f), 0, 0)
    r = start(runs, data)
    assert check_layout(data, m.pw_uid) == []
    c = harness.Client(r.port, "alice", "alice-secret-1")
    try:
        assert c.connect() == 0
    finally:
        c.close()


@ROOT_ONLY
def test_a_config_the_broker_user_plants_in_the_data_folder_is_never_read(runs, root_dir):
    m = broker_user()
    data = os.path.join(root_dir, "var")
    stop(start(runs, data))
    # mosquitto's own files where the previous release's broker config was
    # (read as root: a `user root` there kept the broker root, with the
    # plugin it names): an extra listener shows whether it was read.
    extra = harness.free_port()
    conf_d = os.path.join(data, "conf.d")
    for old in (conf_d, os.path.join(data, "mosquitto-run.conf")):
        if os.path.lexists(old):   # root's: mosquitto renames it out of the way
            os.rename(old, old + ".old")
    os.mkdir(conf_d, 0o755)
    os.chown(conf_d, m.pw_uid, m.pw_gid)
    plant(os.path.join(conf_d, "zz.conf"), "listener %d 127.0.0.1\n" % extra, m.pw_uid, m.pw_gid)
    plant(os.path.join(data, "mosquitto-run.conf"), "listener %d 127.0.0.1\n" % extra,
          m.pw_uid, m.pw_gid)
    r = start(runs, data)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", extra)) != 0, "the broker read a config of mosquitto's"
    assert check_layout(data, m.pw_uid) == []


@ROOT_ONLY
def test_a_tls_folder_swapped_by_the_broker_user_is_refused(runs, root_dir):
    m = broker_user()
    data = os.path.join(root_dir, "var")
    target = secret_file(root_dir)
    stop(start(runs, data))
    # mosquitto moves root's tls/ aside and makes its own, whose server.key
    # is a link to a file of root's: root giving "the key" to mosquitto
    # (chown without -h) would give it that file.
    tls = os.path.join(data, "tls")
    os.rename(tls, os.path.join(data, "tls.old"))
    os.mkdir(tls, 0o755)
    for f in ("ca.crt", "server.crt", "ca.key"):
        shutil.copy(os.path.join(data, "tls.old", f), os.path.join(tls, f))
        os.chown(os.path.join(tls, f), m.pw_uid, m.pw_gid)
    os.symlink(target, os.path.join(tls, "server.key"))
    os.lchown(os.path.join(tls, "server.key"), m.pw_uid, m.pw_gid)
    os.chown(tls, m.pw_uid, m.pw_gid)
    r = runs[1](data)
    r.wait_exit()
    assert untouched(target), "root gave a file of its own to mosquitto"
    assert r.proc.returncode == 1
    assert "%s belongs to mosquitto, not to root: refusing to write keys there" % tls in r.output(), \
        r.output()


@ROOT_ONLY
@pytest.mark.parametrize("name", ["archiver.lock", "archiver.log", "mosquitto.log"])
def test_links_the_broker_user_plants_are_refused_and_never_followed(runs, root_dir, name):
    m = broker_user()
    data = os.path.join(root_dir, "var")
    target = secret_file(root_dir)
    stop(start(runs, data))
    # Files root opened itself before: a lock it probed, the logs it opened
    # for the two processes.
    path = os.path.join(data, name)
    os.unlink(path)
    os.symlink(target, path)
    os.lchown(path, m.pw_uid, m.pw_gid)
    r = runs[1](data)
    r.wait_exit()
    assert untouched(target)
    assert r.proc.returncode == 1
    assert "%s is a symbolic link" % path in r.output(), r.output()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root to start make run as another user")
def test_make_run_as_another_user_keeps_everything_that_users(runs, root_dir):
    nobody = pwd.getpwnam("nobody")
    os.chown(root_dir, nobody.pw_uid, nobody.pw_gid)
    data = os.path.join(root_dir, "var")
    pre = ["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid, "--clear-groups", "--"]
    r = runs[1](data, prefix=pre).wait_running()
    out = r.output()
    assert "'mosquitto' user" not in out, out
    assert proc_uid(r.bpid) == nobody.pw_uid and proc_uid(r.apid) == nobody.pw_uid
    for name, path in list(entries(data, "DATA").items()) + list(entries(data + ".run", "DATA.run").items()):
        assert os.lstat(path).st_uid == nobody.pw_uid, name
    assert sorted(os.listdir(data + ".run")) == ["mosquitto.conf", "run.lock"]
    stop(r)
