"""measure_front.py - figures for the front (config/haproxy.cfg), printed.

    BUILD=build /usr/bin/python3 tests/cluster/measure_front.py [ROUNDS | limits]

On a cluster of 3 nodes from cluster_util (not a test: pytest does not
collect it):
- spread: 3000 client ids through the front, connections per node;
- CPU: HAProxy's user+system CPU per CONNECT (CONNECT, CONNACK, DISCONNECT
  on a fresh connection, 2000 in a row; a cached login on the node);
- memory: HAProxy's RSS per idle MQTT connection (1000 held open), with
  the config's tune.bufsize and with HAProxy's default 16384;
- kill: a node SIGKILLed with 8-15 clients on it, each reconnecting as soon
  as it is dropped (again 100 ms after the front closes a try without a
  CONNACK): time from the kill to its CONNACK from another node;
  time until HAProxy shows the node DOWN; after a restart, until UP;
- hang: a node SIGSTOPped: time until the front has closed its clients;
- limits (also alone: `limits`): HAProxy's CPU per connection refused by
  the per-address rate (a flood of 2000 from one address), and its RSS per
  entry of the per-address table (20,000 addresses, one connection each).
"""
import collections
import os
import signal
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_util  # noqa: E402
from cluster_util import PASSWORD, Cluster  # noqa: E402
import harness  # noqa: E402
import test_front as tf  # noqa: E402


def raw_cycle(port, pkt):
    # Each from its own address, as real clients: the front limits per address.
    s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                 source_address=(cluster_util.next_source(), 0))
    try:
        s.sendall(pkt)
        got = s.recv(4)
        assert got[:1] == b"\x20" and got[3:4] == b"\x00", got
        s.sendall(b"\xe0\x00")
    finally:
        s.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def server_totals(cl):
    return {n.name: int(tf.stat(cl, "mqtt_nodes", n.name)["stot"] or 0) for n in cl.nodes}


def spread_and_cpu(cl):
    before = server_totals(cl)
    for i in range(3000):
        raw_cycle(cl.front.port, tf.connect_packet("u0@s%d" % i, "u0", PASSWORD))
    after = server_totals(cl)
    print("spread of 3000 client ids: %s" % {k: after[k] - before[k] for k in after})
    pkt = tf.connect_packet("u1@cpu", "u1", PASSWORD)
    raw_cycle(cl.front.port, pkt)
    n = 2000
    c0, t0 = cl.front.cpu_seconds(), time.monotonic()
    for _ in range(n):
        raw_cycle(cl.front.port, pkt)
    c1, t1 = cl.front.cpu_seconds(), time.monotonic()
    print("HAProxy CPU per CONNECT: %.1f us (%d in %.2f s, %.0f/s)" % (
        (c1 - c0) / n * 1e6, n, t1 - t0, n / (t1 - t0)))


def table_used(cl):
    head = cl.front.command("show table per_address").splitlines()[0]
    return int(head.rsplit("used:", 1)[1])


def limits(cl):
    src, pkt, n = "127.0.2.1", tf.connect_packet("u2@limit", "u2", PASSWORD), 2000
    got = [tf.mqtt_try(cl.front.port, src, "u2@limit", "u2") for _ in range(tf.CONN_RATE)]
    assert got == [0] * tf.CONN_RATE, got
    c0, t0 = cl.front.cpu_seconds(), time.monotonic()
    for _ in range(n):
        s, back = tf.open_raw(cl.front.port, src, pkt)
        s.close()
        assert back == b"", back
    c1, t1 = cl.front.cpu_seconds(), time.monotonic()
    print("HAProxy CPU per connection refused by the rate: %.1f us (%d in %.2f s)" % (
        (c1 - c0) / n * 1e6, n, t1 - t0))
    pid, used0 = cl.front.proc.proc.pid, table_used(cl)
    r0, k = rss_kb(pid), 0
    for x in range(3, 255):
        for y in range(1, 255):
            if k == 20000:
                break
            s = socket.create_connection(("127.0.0.1", cl.front.port), timeout=5,
                                         source_address=("127.3.%d.%d" % (x, y), 0))
            s.close()
            k += 1
    time.sleep(0.5)
    r1, used1 = rss_kb(pid), table_used(cl)
    print("per-address table: %d -> %d entries, HAProxy RSS %d -> %d KiB: %.0f bytes per entry" % (
        used0, used1, r0, r1, (r1 - r0) * 1024 / max(1, used1 - used0)))


def idle_memory(bufsize=None):
    orig = cluster_util.rewrite_config
    if bufsize:
        cluster_util.rewrite_config = lambda text, *a, **k: orig(
            text.replace("tune.bufsize 73728", "tune.bufsize %d" % bufsize), *a, **k)
    cl = Cluster(3)
    try:
        for i in range(250):
            cl.store.add_user("m%d" % i, PASSWORD)
        cl.start()
        pid = cl.front.proc.proc.pid
        r0 = rss_kb(pid)
        socks = []
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", cl.front.port), timeout=5,
                                         source_address=(cluster_util.next_source(), 0))
            u = "m%d" % (i % 250)
            s.sendall(tf.connect_packet("%s@idle%d" % (u, i), u, PASSWORD))
            assert s.recv(4)[:1] == b"\x20"
            socks.append(s)
        time.sleep(0.5)
        r1 = rss_kb(pid)
        print("HAProxy RSS per idle connection, bufsize %s: %.1f KiB (%d -> %d KiB for 1000)" % (
            bufsize or 73728, (r1 - r0) / 1000, r0, r1))
        for s in socks:
            s.close()
    finally:
        cluster_util.rewrite_config = orig
        cl.stop()


def kill_round(cl, tag):
    clients = [tf.login(cl, u, "%s@%s" % (u, tag)) for u in tf.USERS[:30]]
    home = {c.client_id: cl.node_of(c.client_id) for c in clients}
    victim = cl.node(collections.Counter(home.values()).most_common(1)[0][0])
    mine = [c for c in clients if home[c.client_id] == victim.name]
    landed, retried = [], []
    t0 = time.monotonic()
    victim.kill()

    def back(c):
        c.disconnected.wait(5)
        c.close()
        n, tries = tf.retry_until_in(cl, c, t0 + 10)
        landed.append(time.monotonic() - t0)
        retried.append(tries > 1)
        n.close()
    th = [threading.Thread(target=back, args=(c,)) for c in mine]
    for t in th:
        t.start()
    harness.wait_for(lambda: cl.front.states()[victim.name] == "DOWN", 10, interval=0.005)
    down = time.monotonic() - t0
    for t in th:
        t.join()
    t1 = time.monotonic()
    victim.start()
    harness.wait_for(lambda: cl.front.states()[victim.name] == "UP", 10, interval=0.005)
    up = time.monotonic() - t1
    for c in clients:
        c.close()
    return len(mine), max(landed), statistics.median(landed), down, up, sum(retried)


def hang_round(cl, tag):
    clients = [tf.login(cl, u, "%s@%s" % (u, tag)) for u in tf.USERS[:30]]
    home = {c.client_id: cl.node_of(c.client_id) for c in clients}
    victim = cl.node(collections.Counter(home.values()).most_common(1)[0][0])
    mine = [c for c in clients if home[c.client_id] == victim.name]
    t0 = time.monotonic()
    victim.proc.send_signal(signal.SIGSTOP)
    try:
        for c in mine:
            c.disconnected.wait(10)
            c.close()
        took = time.monotonic() - t0
    finally:
        victim.proc.send_signal(signal.SIGCONT)
    harness.wait_for(lambda: cl.front.states()[victim.name] == "UP", 10, interval=0.005)
    for c in clients:
        c.close()
    return took


def main():
    only_limits = sys.argv[1:] == ["limits"]
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 and not only_limits else 5
    cl = Cluster(3)
    try:
        for u in tf.USERS:
            cl.store.add_user(u, PASSWORD)
        cl.start()
        limits(cl)
        if only_limits:
            return
        spread_and_cpu(cl)
        for r in range(rounds):
            n, worst, med, down, up, again = kill_round(cl, "k%d" % r)
            print("kill round %d: %d clients on other nodes after %.0f ms median, %.0f ms worst "
                  "(%d needed a second try); DOWN after %.0f ms; UP %.2f s after restart" % (
                      r, n, med * 1e3, worst * 1e3, again, down * 1e3, up))
        for r in range(3):
            print("hang round %d: its clients closed by the front %.2f s after SIGSTOP" % (
                r, hang_round(cl, "h%d" % r)))
    finally:
        cl.stop()
    idle_memory()
    idle_memory(16384)


if __name__ == "__main__":
    main()
