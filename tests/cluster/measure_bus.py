"""measure_bus.py - latency of a direct message through the bus, printed.

    BUILD=build /usr/bin/python3 tests/cluster/measure_bus.py [N]

On 2 nodes from cluster_util with the bus (not a test: pytest does not
collect it), the recipient on node 2, senders on node 1 (cross-node) and
on node 2 (same node): N direct messages each (default 200), one at a time
when the nodes are idle (paced 20 ms apart), time from the publish call to
the recipient's delivery; p50 and p99. Cross-node twice: with the bus's
wake-up (a PINGREQ on its MQTT connection when DATA/inbox goes non-empty)
and with `--wake off` (the broker publishes the inbox when its loop comes
round: up to 100 ms when idle). Then cross-node again with load: another
pair on the same two nodes sending QoS 1 messages as fast as one Python
client does, the rate printed.
"""
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import PASSWORD, Cluster  # noqa: E402
import harness  # noqa: E402


def latencies(sender, sender_name, recipient, n):
    out = []
    for _ in range(n):
        time.sleep(0.02)
        t0 = time.monotonic()
        sender.publish("chat/inbox/bob/%s" % sender_name, harness.envelope("x"), wait=False)
        recipient.get()
        out.append((time.monotonic() - t0) * 1000)
    return out


def show(what, ms):
    ms = sorted(ms)
    print("%-28s p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms  (n=%d)" % (
        what, statistics.median(ms), ms[int(len(ms) * 0.99) - 1], ms[-1], len(ms)))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    c = Cluster(k=2, bus=True, front=False)
    for u in ("alice", "bob", "carol", "dave"):
        c.store.add_user(u, password=PASSWORD)
    try:
        c.start()
        n1, n2 = c.nodes
        bob = c.node_client(n2, "bob", client_id="bob@m")
        far = c.node_client(n1, "alice", client_id="alice@far")
        near = c.node_client(n2, "alice", client_id="alice@near")
        for cl in (bob, far, near):
            assert cl.connect() == 0
        assert bob.subscribe("chat/inbox/bob/#") == 1
        c.buses["node2"].wait_log("bus: subscribed mq.i.bob.*\n")
        latencies(far, "alice", bob, 20)            # warm up
        show("same node", latencies(near, "alice", bob, n))
        show("cross-node, wake-up", latencies(far, "alice", bob, n))
        c.buses["node2"].stop()
        c.buses["node2"].start(args=["--wake", "off"])
        c.buses["node2"].wait_log("bus: subscribed mq.i.bob.*\n", n=2)
        latencies(far, "alice", bob, 5)
        show("cross-node, no wake-up", latencies(far, "alice", bob, n))
        c.buses["node2"].stop()
        c.buses["node2"].start()
        c.buses["node2"].wait_log("bus: subscribed mq.i.bob.*\n", n=3)
        # Load: carol on node 1 to dave on node 2, unpaced.
        dave = c.node_client(n2, "dave", client_id="dave@m")
        carol = c.node_client(n1, "carol", client_id="carol@m")
        for cl in (dave, carol):
            assert cl.connect() == 0
        assert dave.subscribe("chat/inbox/dave/#") == 1
        c.buses["node2"].wait_log("bus: subscribed mq.i.dave.*\n")
        stop = threading.Event()
        sent = [0]

        def load():
            while not stop.is_set():
                carol.publish("chat/inbox/dave/carol", harness.envelope("load"), wait=False)
                sent[0] += 1
                if sent[0] % 200 == 0:
                    time.sleep(0.01)
        t = threading.Thread(target=load, daemon=True)
        t0 = time.monotonic()
        t.start()
        ms = latencies(far, "alice", bob, n)
        stop.set()
        t.join()
        show("cross-node, %d/s sent" % (sent[0] / (time.monotonic() - t0)), ms)
    finally:
        print(c.stop(failed=False))


if __name__ == "__main__":
    main()
