"""test_symlinks.py - the archiver never follows a link it did not make,
never runs as root on a folder another user may write, and `make run` as
root runs it as the broker's user (docs/SECURITY.md, "The data folder's
owner").

The attack: whoever may write the data folder (the `mosquitto` user under
`make run`) plants `archive.journal` or `archiver.pw` as a link to a file
only root may touch, and waits for a root archiver to truncate it or send
its first line to the broker as the service password."""
import os
import pwd
import shutil
import socket
import subprocess

import pytest

import harness
from test_run_script import Run, alive, proc_uid

SECRET = "root-only-secret-line\n"
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (the attack is on root)")


def mosquitto_user():
    try:
        return pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.skip("no mosquitto user")


@pytest.fixture
def world():
    """A fresh, initialised data folder and, beside it, a private folder
    holding a file only its owner (root, when run as root) may read."""
    data = harness.make_datadir()
    private = harness.make_datadir()
    os.chmod(private, 0o700)
    target = os.path.join(private, "root-only")
    with open(target, "w") as f:
        f.write(SECRET)
    os.chmod(target, 0o600)
    p = subprocess.run([harness.ARCHIVER, "--data", data, "init"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    yield data, target
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(private, ignore_errors=True)


def unchanged(target):
    st = os.stat(target)
    with open(target) as f:
        return f.read() == SECRET and st.st_mode & 0o777 == 0o600 and st.st_uid == os.geteuid()


def run_archiver(data, port):
    """The daemon on data, against a port where nothing answers MQTT; it
    must give up before connecting. Returns the finished process."""
    return subprocess.run([harness.ARCHIVER, "--data", data, "run", "--port", str(port)],
                          capture_output=True, text=True, timeout=30)


def test_a_linked_journal_is_refused_and_its_target_untouched(world):
    data, target = world
    os.symlink(target, os.path.join(data, "archive.journal"))
    p = run_archiver(data, harness.free_port())
    assert p.returncode != 0, p.stderr
    assert "archive.journal is a symbolic link: refusing to follow it" in p.stderr, p.stderr
    assert unchanged(target)
    assert os.path.islink(os.path.join(data, "archive.journal"))


def test_a_linked_password_file_is_refused_and_never_sent(world):
    data, target = world
    pw = os.path.join(data, "archiver.pw")
    os.unlink(pw)
    os.symlink(target, pw)
    # A listener on loopback in place of the broker: anything the archiver
    # sent would first need a connection to it.
    lsock = socket.socket()
    try:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        p = run_archiver(data, lsock.getsockname()[1])
        assert p.returncode != 0, p.stderr
        assert "archiver.pw is a symbolic link: refusing to follow it" in p.stderr, p.stderr
        assert SECRET.strip() not in p.stdout + p.stderr
        # The process has exited: a connection it made would be queued.
        lsock.setblocking(False)
        with pytest.raises(BlockingIOError):
            lsock.accept()
    finally:
        lsock.close()
    assert unchanged(target)


@pytest.mark.parametrize("name", ["archive.db-wal", "auth.db-shm"])
def test_a_linked_database_file_is_refused(world, name):
    data, target = world
    path = os.path.join(data, name)
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink(target, path)
    p = run_archiver(data, harness.free_port())
    assert p.returncode != 0
    assert "%s is a symbolic link" % name in p.stderr, p.stderr
    # The CLI (often run as root) refuses it too.
    c = subprocess.run([harness.ARCHIVER, "--data", data, "user", "list"], capture_output=True,
                       text=True, timeout=30)
    if name.startswith("auth.db"):
        assert c.returncode != 0 and "%s is a symbolic link" % name in c.stderr, c.stderr
    assert unchanged(target)


@ROOT_ONLY
def test_root_refuses_a_folder_another_user_owns(world):
    data, target = world
    m = mosquitto_user()
    os.chown(data, m.pw_uid, m.pw_gid)
    p = run_archiver(data, harness.free_port())
    assert p.returncode != 0
    assert "refusing to run as root on %s (owned by mosquitto" % data in p.stderr, p.stderr
    # Nothing was opened, not even the lock file.
    assert not os.path.exists(os.path.join(data, "archiver.lock"))


@ROOT_ONLY
def test_init_owner_refuses_a_link_and_leaves_its_target_alone(world):
    data, target = world
    mosquitto_user()
    os.symlink(target, os.path.join(data, "archive.journal"))
    p = subprocess.run([harness.ARCHIVER, "--data", data, "init", "--owner", "mosquitto"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "archive.journal is a symbolic link" in p.stderr, p.stderr
    assert unchanged(target)


@ROOT_ONLY
def test_make_run_as_root_runs_the_archiver_as_the_data_folders_owner():
    m = mosquitto_user()
    root = harness.make_datadir()   # 0755: the broker's user may reach it
    data = os.path.join(root, "var")
    r = Run(data, harness.free_port())
    try:
        r.wait_running()
        out = r.output()
        assert r.apid is not None, out
        if "the broker and the archiver run as the 'mosquitto' user" in out:
            assert proc_uid(r.apid) == m.pw_uid, out
            assert proc_uid(r.bpid) == m.pw_uid
            owner = m.pw_uid
        else:
            # The checkout is out of the broker's user's reach: both stay
            # root, and so does the folder, which no one else may write.
            assert "the broker keeps running as root" in out, out
            owner = 0
        # docs/ARCHITECTURE.md, "Data folder": the files of the broker and
        # the archiver are that user's; what root writes for the broker is
        # root's, beside the folder (test_run_layout.py checks it all).
        st = os.stat(data)
        assert st.st_uid == owner and st.st_mode & 0o022 == 0
        for f in ("auth.db", "archive.db", "archiver.pw", "archive.journal", "archiver.lock",
                  "mosquitto", "mosquitto.log", "archiver.log"):
            assert os.lstat(os.path.join(data, f)).st_uid == owner, f
        for f in ("", "/run.lock", "/mosquitto.conf"):
            assert os.lstat(data + ".run" + f).st_uid == 0, f
        assert os.stat(os.path.join(data, "archiver.pw")).st_mode & 0o777 == 0o600
    finally:
        r.stop()
        assert not alive(r.apid or 0) and not alive(r.bpid or 0)
        shutil.rmtree(root, ignore_errors=True)
