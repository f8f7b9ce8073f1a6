#!/usr/bin/python3
"""callgrind.py - broker instructions per message, with and without the plugin.

Instruction counts (valgrind --tool=callgrind) do not depend on what else
the machine is doing, unlike CPU time. The broker runs under callgrind twice
per setup, with N1 and N2 messages of the same paced load (10 pairs, QoS 0,
200-byte envelopes, 2,000 msg/s); (Ir(N2) - Ir(N1)) / (N2 - N1) is the cost
of one message with start-up, logins and shutdown cancelled out. It counts
user-space instructions of the broker process (the plugin's loader is a
process of its own and is not counted: the broker thread never waits for
it), not the kernel's work.

    bench/callgrind.py [N1 N2]          (default 2000 12000; about 20 s)
    bench/callgrind.py room [N1 N2]     a room of 100, QoS 0, per delivery
                                        (default 20000 120000 deliveries)
"""
import os
import signal
import socket
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
PW = "bench-password"


def conf(d, port, plugin):
    lines = ["per_listener_settings false", "listener %d 127.0.0.1" % port,
             "set_tcp_nodelay true", "log_dest none", "max_queued_messages 100000"]
    if os.geteuid() == 0:
        lines.append("user root")
    if plugin:
        lines += ["allow_anonymous false", "plugin %s/mqchat_auth.so" % BUILD,
                  "plugin_opt_dbpath %s/auth.db" % d,
                  # On (its cost counts), never refusing a bench sender.
                  "plugin_opt_send_rate 1000000", "plugin_opt_send_burst 1000000"]
    else:
        lines.append("allow_anonymous true")
    path = os.path.join(d, "mosquitto.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


MEMBERS = 100


def instructions(plugin, count, room=False):
    d = harness.make_datadir()
    try:
        if plugin:
            st = harness.Store(os.path.join(d, "auth.db"))
            if room:
                for i in range(MEMBERS):
                    st.add_user("m%d" % i, PW)
                st.add_room("bench", ["m%d" % i for i in range(MEMBERS)])
            else:
                for i in range(10):
                    st.add_user("s%d" % i, PW)
                    st.add_user("r%d" % i, PW)
        port = harness.free_port()
        # %p: the plugin's loader process, forked from the broker, writes
        # a file of its own.
        p = subprocess.Popen(["valgrind", "--tool=callgrind",
                              "--callgrind-out-file=" + os.path.join(d, "callgrind.out.%p"),
                              harness.MOSQUITTO, "-c", conf(d, port, plugin)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def up():
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    return True
                except OSError:
                    return False
            harness.wait_for(up, 60, what="broker under callgrind")
            load = (["fanout", "--members", str(MEMBERS), "--room", "bench", "--window", "4",
                     "--rate", "10000"] if room else
                    ["pairs", "--pairs", "10", "--rate", "2000"])
            r = subprocess.run([os.path.join(BUILD, "mqchat-bench"), load[0], "--port", str(port),
                                "--password", PW, "--qos", "0", "--count", str(count),
                                "--seconds", "120", "--warmup-ms", "0"] + load[1:],
                               capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                raise SystemExit("Error: load failed: " + r.stderr.strip())
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(120)
        with open(os.path.join(d, "callgrind.out.%d" % p.pid)) as f:
            for line in f:
                if line.startswith("totals:") or line.startswith("summary:"):
                    return int(line.split()[1])
        raise SystemExit("Error: no totals in the callgrind output")
    finally:
        subprocess.run(["rm", "-rf", d])


def main():
    args = sys.argv[1:]
    room = bool(args) and args[0] == "room"
    if room:
        args = args[1:]
    n1, n2 = (int(args[0]), int(args[1])) if len(args) == 2 else ((20000, 120000) if room else (2000, 12000))
    per = {}
    for plugin in (False, True):
        # --count counts deliveries.
        per[plugin] = (instructions(plugin, n2, room) - instructions(plugin, n1, room)) / float(n2 - n1)
    print("broker instructions per %s: no auth %.0f, mqchat plugin %.0f (%.2fx, +%.0f)" % (
        "delivery, room of 100 QoS 0" if room else "message, 10 pairs QoS 0",
        per[False], per[True], per[True] / per[False], per[True] - per[False]))


if __name__ == "__main__":
    main()
