"""fault_util.py - helpers for the fault tests (tests/integration/test_fault_*.py).

    from fault_util import rss_kb, small_fs, fill, raw_session, bulk_users

Everything here builds on harness.py and plugin_util.py (the raw MQTT
encoding is plugin_util's). What a helper starts or mounts is undone by the
helper itself (context managers), pass or fail.
"""
import contextlib
import os
import resource
import selectors
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest

import harness
from plugin_util import _s, _varint


def rss_kb(pid):
    """Resident set size of a process in KiB (VmRSS of /proc/<pid>/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def nofile_of(pid):
    """The soft open-file limit of a running process (/proc/<pid>/limits)."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                v = line.split()[3]
                return float("inf") if v == "unlimited" else int(v)
    raise AssertionError("no open-file limit for pid %d" % pid)


def raise_nofile(want):
    """Raise this process's open-file limit (soft) towards want, up to the
    hard limit; processes started afterwards (the broker) inherit it.
    Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def bulk_users(store, names, password):
    """Add many users in one transaction, all with one low-cost hash (the
    plugin still runs PBKDF2 once per first login)."""
    h = harness.pbkdf2_hash(password)
    now = int(time.time() * 1000)
    db = sqlite3.connect(store.path, timeout=10, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO users(name, kind, nick, pwhash, enabled, created) "
                       "VALUES(?, 'user', ?, ?, 1, ?)", [(n, n, h, now) for n in names])
        db.execute("COMMIT")
    finally:
        db.close()


# ---- raw MQTT sessions that stay open (plugin_util.raw_connect closes its socket)

def connect_packet(client_id, username, password, keepalive=30):
    """An MQTT 3.1.1 CONNECT with clean session, username and password."""
    payload = _s(client_id) + _s(username) + _s(password)
    var = _s("MQTT") + bytes([4, 0x02 | 0x80 | 0x40]) + keepalive.to_bytes(2, "big")
    body = var + payload
    return b"\x10" + _varint(len(body)) + body


def connect_many(port, creds, timeout=90.0):
    """Open one socket per (client id, username, password), send every
    CONNECT at once, and collect the CONNACKs with one selector. Returns
    (sockets, codes): codes[i] is the CONNACK return code of creds[i], or
    None if the broker closed without one or none came within timeout (a
    connect that overflowed the listen backlog is retried by the kernel after
    1, 3, 7... s, so the bound is generous). The caller closes the sockets
    (close_all)."""
    socks = []
    try:
        for cid, user, pw in creds:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
        sel = selectors.DefaultSelector()
        pending = {}
        for i, s in enumerate(socks):
            pending[s] = (i, connect_packet(*creds[i]), b"")
            sel.register(s, selectors.EVENT_WRITE)
        codes = [None] * len(socks)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for key, ev in sel.select(0.2):
                s = key.fileobj
                i, out, got = pending[s]
                try:
                    if ev & selectors.EVENT_WRITE and out:
                        n = s.send(out)
                        out = out[n:]
                        if not out:
                            sel.modify(s, selectors.EVENT_READ)
                    elif ev & selectors.EVENT_READ:
                        chunk = s.recv(4 - len(got))
                        if not chunk:
                            raise ConnectionError("closed")
                        got += chunk
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    sel.unregister(s)
                    del pending[s]
                    continue
                if len(got) == 4:
                    codes[i] = got[3] if got[0] == 0x20 else None
                    sel.unregister(s)
                    del pending[s]
                else:
                    pending[s] = (i, out, got)
        sel.close()
        return socks, codes
    except BaseException:
        close_all(socks)
        raise


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def closed_by_peer(s, timeout):
    """Wait up to timeout for the peer to close s (EOF or reset); True if it
    did. Data the broker sends meanwhile is read and ignored."""
    s.setblocking(True)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        s.settimeout(left)
        try:
            if not s.recv(65536):
                return True
        except socket.timeout:
            return False
        except OSError:
            return True


# ---- a small file system for the data folder (disk full)

@contextlib.contextmanager
def small_fs(mountpoint, mb=8):
    """Mount a fresh ext4 file system of mb MiB (no blocks reserved for root)
    on mountpoint for the duration of the block. Skips the test where loop
    mounts are not possible (not root, no loop device, no mkfs.ext4)."""
    if os.geteuid() != 0 or not shutil.which("mkfs.ext4") or not shutil.which("mount"):
        pytest.skip("a loop mount needs root, mkfs.ext4 and mount")
    imgdir = tempfile.mkdtemp(prefix="mqchat-img-")
    img = os.path.join(imgdir, "fs.img")
    mounted = False
    try:
        with open(img, "wb") as f:
            f.truncate(mb * 1024 * 1024)
        r = subprocess.run(["mkfs.ext4", "-q", "-m", "0", "-F", img], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            pytest.skip("mkfs.ext4 failed: %s" % r.stderr.strip())
        r = subprocess.run(["mount", "-o", "loop", img, mountpoint], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            pytest.skip("loop mount not possible here: %s" % r.stderr.strip())
        mounted = True
        os.chmod(mountpoint, 0o755)
        yield mountpoint
    finally:
        if mounted:
            r = subprocess.run(["umount", mountpoint], capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                # something of the test still holds a file: detach lazily
                subprocess.run(["umount", "-l", mountpoint], capture_output=True, timeout=60)
        shutil.rmtree(imgdir, ignore_errors=True)


def fill(directory, name="filler"):
    """Write zeros into directory/name until the file system is full.
    Returns the file's path (delete it to give the space back)."""
    path = os.path.join(directory, name)
    block = b"\0" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            try:
                os.write(fd, block)
            except OSError:
                if len(block) > 512:
                    block = block[:len(block) // 2]
                    continue
                break
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def free_bytes(directory):
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


class RssPeak:
    """Sample a process's VmRSS every 10 ms on a thread while the block runs;
    .peak is the highest value seen (KiB), .start the first.

        with RssPeak(broker.proc.pid) as r:
            ...
        assert r.peak - r.start < bound"""

    def __init__(self, pid, interval=0.01):
        self.pid = pid
        self.interval = interval
        self.start = self.peak = rss_kb(pid)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except (OSError, AssertionError):
                return
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)
        return False
