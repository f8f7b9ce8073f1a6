"""A PostgreSQL 15 server of a test module's own (tests/unit/pg_cluster.sh):
made in a temp folder, listening on a Unix socket there only, stopped and
removed at the end whatever happened."""
import contextlib
import os
import shutil
import subprocess
import tempfile

import pytest

import harness

PG_BIN = "/usr/lib/postgresql/15/bin"
CLUSTER = os.path.join(harness.ROOT, "tests", "unit", "pg_cluster.sh")


def cluster(top, cmd):
    """Run pg_cluster.sh's cmd (start, stop, crash, resume) on the server in top."""
    p = subprocess.run(["sh", CLUSTER, cmd, top], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


@contextlib.contextmanager
def pg_server():
    """The folder of a running server; skips the test when PostgreSQL 15 is missing."""
    if not os.access(os.path.join(PG_BIN, "initdb"), os.X_OK):
        pytest.skip("PostgreSQL 15 is not installed (no %s/initdb; Debian: postgresql-15)" % PG_BIN)
    # Not pytest's tmp_path: its folders are 0700 root's, and the server
    # runs as nobody when the tests run as root.
    top = tempfile.mkdtemp(prefix="mqchat-pg-", dir="/tmp")
    try:
        cluster(top, "start")
        yield top
    finally:
        subprocess.run(["sh", CLUSTER, "stop", top], capture_output=True, timeout=120)
        shutil.rmtree(top, ignore_errors=True)


def write_store_conf(datadir, top, db):
    """DATA/store.conf naming database db of the server in top (0600: such a
    file may hold a password)."""
    path = os.path.join(datadir, "store.conf")
    with open(path, "w") as f:
        f.write("store postgresql\nstore_conninfo host=%s port=5432 user=mqchat dbname=%s\n"
                % (os.path.join(top, "pg"), db))
    os.chmod(path, 0o600)


def psql(top, db, sql):
    """Run sql in database db of the server in top; its rows as lists of text."""
    p = subprocess.run([os.path.join(PG_BIN, "psql"), "-h", os.path.join(top, "pg"), "-U", "mqchat",
                        "-d", db, "-X", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return [line.split("|") for line in p.stdout.splitlines() if line]
