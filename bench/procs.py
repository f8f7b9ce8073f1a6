"""procs.py - the processes the bench driver starts, and what /proc says of them.

A Broker is one mosquitto (and, for setup (e), its archiver) in a folder of
its own on a free 127.0.0.1 port; it is stopped by its PID, never by name.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time

from settings import ARCHIVER, MOSQUITTO


class Unavailable(Exception):
    """A setup (or a measurement) cannot run; the message says why."""


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def require_built(path):
    """Raises Unavailable when a program or plugin of the build is missing."""
    if not os.path.exists(path):
        raise Unavailable("%s is not built" % os.path.relpath(path))


def read_text(path):
    """The whole file, or "" when it cannot be read."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def last_lines(text, n):
    return " | ".join(text.strip().splitlines()[-n:])


def stop_process(p):
    """SIGTERM, then SIGKILL after 10 s; p may be None or already gone."""
    if p and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Broker:
    """mosquitto with the configuration lines given, in folder d on port."""

    def __init__(self, d, port, lines):
        self.d, self.port = d, port
        self.conf = os.path.join(d, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        self.archiver = None
        self.archiver_args = []   # more `run` options (--spool)
        self.start_s = None

    def start(self, timeout=60):
        """Starts the broker and waits until it accepts connections; start_s
        is how long that took. Raises Unavailable if it exits or never listens."""
        t0 = time.monotonic()
        with open(os.path.join(self.d, "mosquitto.out"), "wb") as out:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdout=out,
                                         stderr=subprocess.STDOUT, cwd=self.d)
        while True:
            if self.proc.poll() is not None:
                raise Unavailable("broker exited (%s): %s" % (self.proc.returncode, self.tail()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > timeout:
                raise Unavailable("broker did not listen within %ds" % timeout)
            time.sleep(0.005)
        self.start_s = time.monotonic() - t0

    def tail(self, n=300):
        text = (read_text(os.path.join(self.d, "mosquitto.out")) +
                read_text(os.path.join(self.d, "mosquitto.log")))
        return last_lines(text, 4)[-n:]

    def log_text(self):
        return read_text(os.path.join(self.d, "mosquitto.log"))

    def spawn_archiver(self):
        """Starts `mqchat-archiver run` on this broker's data folder and port,
        its output appended to archiver.out; does not wait for it."""
        with open(os.path.join(self.d, "archiver.out"), "ab") as out:
            self.archiver = subprocess.Popen([ARCHIVER, "--data", self.d, "run", "--port",
                                              str(self.port)] + self.archiver_args, stdout=out,
                                             stderr=subprocess.STDOUT, cwd=self.d)

    def start_archiver(self):
        """Starts the archiver and waits (up to 10 s) until the broker has
        seen its session (the log names its client id)."""
        self.spawn_archiver()
        time.sleep(0.05)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.archiver.poll() is not None:
                t = last_lines(read_text(os.path.join(self.d, "archiver.out")), 3)
                raise Unavailable("archiver exited (%s): %s" % (self.archiver.returncode, t[-300:]))
            if re.search(r"New client connected .* as archiver", self.log_text()):
                return
            time.sleep(0.05)
        raise Unavailable("archiver did not connect within 10 s")

    def stop_archiver(self):
        stop_process(self.archiver)

    def stop(self):
        stop_process(self.archiver)
        stop_process(self.proc)


def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def proc_tree_pss_kb(pid):
    """Proportional set size of pid and its child processes (the plugin's
    loader shares the snapshot's pages with the broker: PSS counts each
    page once over both, RSS would count it in each)."""
    total = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                break
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            continue
        for kid in kids:
            try:
                total += proc_tree_pss_kb(kid)
            except OSError:
                pass
    return total


def proc_cpu_s(pid):
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        st = f.read().rsplit(")", 1)[1].split()
    return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")


def publish_all(messages, window=1000):
    """Publish (client, topic, payload) at QoS 1 with paho, waiting for the
    acknowledgements a window at a time: the broker queues them all (the
    archiver is stopped) without any one client holding more than a window
    unacknowledged."""
    infos = []
    for c, t, payload in messages:
        infos.append(c.c.publish(t, payload, qos=1))
        if len(infos) >= window:
            for info in infos:
                info.wait_for_publish(timeout=60)
            infos = []
    for info in infos:
        info.wait_for_publish(timeout=60)
