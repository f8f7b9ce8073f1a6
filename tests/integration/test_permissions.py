"""test_permissions.py - an operator who may not enter the data folder is told
so, with the path, not "no such file (run init)", which would send them to
re-create what exists. Run as root, the commands run as `nobody`."""
import os
import shutil
import subprocess

import pytest

import harness
from cli_util import NODB, OK, RUNTIME, cli

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"),
                                reason="needs root to run a command as nobody")


def as_nobody(*argv, timeout=20):
    return subprocess.run(["runuser", "-u", "nobody", "--"] + list(argv), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def data(datadir):
    """A data folder made by init as root (0750, root's), in a folder that
    everyone may enter."""
    d = os.path.join(datadir, "var")
    assert cli(d, "init").rc == OK
    assert os.stat(d).st_mode & 0o777 == 0o750
    return d


@pytest.mark.parametrize("args", [("user", "list"), ("room", "list"), ("stats",),
                                  ("user", "add", "bob", "--password-stdin")])
def test_cli_without_permission_says_permission_denied(data, args):
    p = as_nobody(harness.ARCHIVER, "--data", data, *args)
    assert p.returncode == RUNTIME, p
    first = p.stderr.splitlines()[0]
    assert first.startswith("Error: %s/" % data) and "permission denied" in first, p.stderr
    assert "belongs to root, mode 0750" in first, p.stderr
    assert "no such file" not in p.stderr and "init" not in p.stderr, p.stderr


def test_daemon_without_permission_says_permission_denied(data):
    p = as_nobody(harness.ARCHIVER, "--data", data, "run", "--port", "1")
    assert p.returncode == 1, p
    assert "%s/archiver.lock: Permission denied" % data in p.stderr, p.stderr
    assert "no such" not in p.stderr, p.stderr


def test_store_readable_but_not_enterable_folder(data):
    # The folder may be passed through (as make run leaves it for ca.crt),
    # but auth.db is 0640 root's: the file is named, not a missing store.
    os.chmod(data, 0o751)
    p = as_nobody(harness.ARCHIVER, "--data", data, "user", "list")
    assert p.returncode == RUNTIME, p
    assert p.stderr.startswith("Error: %s/auth.db: permission denied" % data), p.stderr


def test_missing_store_still_says_run_init(datadir):
    # The message that was right stays: a folder without auth.db.
    r = cli(datadir, "user", "list")
    assert r.rc == NODB, r
    assert r.err == ("Error: %s/auth.db: no such file (run `mqchat-archiver --data %s init`)\n"
                     % (datadir, datadir)), r
