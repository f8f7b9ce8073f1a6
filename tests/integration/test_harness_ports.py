"""test_harness_ports.py - the ports tests listen on (harness.free_port) stay
theirs: a broker restarted on its old port must find it free while other
tests run in parallel. Such a port was taken meanwhile ("address already in
use") when it came from the kernel's ephemeral range, where every other
test's client connections and bind(0) calls take theirs."""
import os
import socket
import subprocess
import sys

import harness


def ephemeral_range():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low, high = (int(x) for x in f.read().split())
    return low, high


def test_ports_are_outside_the_ephemeral_range():
    low, high = ephemeral_range()
    for _ in range(50):
        p = harness.free_port()
        assert not low <= p <= high, "port %d is in the ephemeral range %d-%d" % (p, low, high)


def test_a_port_is_given_once_and_reserved_against_other_processes():
    mine = [harness.free_port() for _ in range(20)]
    assert len(set(mine)) == len(mine)
    # Another test process (an xdist worker, another run) cannot reserve
    # them, and is given others.
    code = ("import sys; sys.path.insert(0, %r); import harness\n"
            "print(sum(harness._port_reservable(p) for p in %r))\n"
            "print(' '.join(str(harness.free_port()) for _ in range(200)))\n"
            % (os.path.dirname(harness.__file__), mine))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "0", "another process reserved %s of our ports" % lines[0]
    assert not set(mine) & {int(x) for x in lines[1].split()}


def test_restart_on_the_old_port_while_others_take_ports(datadir, store):
    # While the broker is down, others take ports the usual ways: the
    # kernel never hands out ours.
    b = harness.Broker(datadir)
    b.start()
    try:
        for _ in range(3):
            b.stop()
            taken = []
            try:
                for _ in range(200):
                    s = socket.socket()
                    s.bind(("127.0.0.1", 0))
                    taken.append(s)
                assert b.port not in {s.getsockname()[1] for s in taken}
            finally:
                for s in taken:
                    s.close()
            b.start()
    finally:
        b.stop()
