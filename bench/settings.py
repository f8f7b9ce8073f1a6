"""settings.py - what the bench driver measures and where it finds things.

Everything is read once from the environment (BUILD, QUICK, SETUPS, OUT);
paths are absolute under the repository, except OUT, which is taken from
the repository's root as the driver's working folder.
"""
import os
import shutil

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.environ.get("BUILD", "build")
BENCH = os.path.join(ROOT, BUILD, "mqchat-bench")
PLUGIN = os.path.join(ROOT, BUILD, "mqchat_auth.so")
ARCHIVER = os.path.join(ROOT, BUILD, "mqchat-archiver")
DYNSEC = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
SCHEMA = os.path.join(ROOT, "common", "userdb_schema.sql")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
OUT = os.environ.get("OUT", os.path.join("bench", "results"))
QUICK = os.environ.get("QUICK", "") not in ("", "0")
SETUPS = os.environ.get("SETUPS", "a b c d e").split()

PASSWORD = "bench-password"
ITERATIONS = 4300          # PWHASH_DEFAULT_ITERATIONS in common/pwhash.h
ROOM = "bench"
MEMBERS = 100

# The targets' own figure, (d) against (a) on pairs 10 QoS 0, gets many more
# paired rounds of its own: single rounds move by up to 1.5x here, and 5
# rounds leave the median of their ratios a few percent either way.
KEY_LOAD = ("pairs", 10, 0)
if QUICK:
    KEY_ROUNDS = 4
    SECONDS, WARMUP, ROUNDS, CONN_USERS, WARM_COUNT = 0.5, 150, 2, 200, 2000
    FLOOD_SECONDS, RPC_COUNT, ARCHIVE_ROWS = 1.5, 200, 100000
    DRAIN_MSGS = 20000
else:
    KEY_ROUNDS = 30
    # 5 rounds: the machine's background load moves single rounds by up to
    # 1.5x; the paired ratios below need a few rounds to settle.
    SECONDS, WARMUP, ROUNDS, CONN_USERS, WARM_COUNT = 2.0, 500, 5, 1000, 10000
    FLOOD_SECONDS, RPC_COUNT, ARCHIVE_ROWS = 4.0, 1000, 1000000
    DRAIN_MSGS = 80000   # below the bench brokers' max_queued_messages (100,000)
BIG_USERS, BIG_ROOMS, BIG_MEMBERS = 100000, 10000, 10
# Issue 17's RPCs on the prefilled archive (runs.py run_rpc): the asker c0
# has a direct conversation with each of c1..c<ASKER_PEERS> and is in the
# room ROOM (bench/prefill.c puts 25% of the archive there), so 1,000
# conversations. Each latency figure gets FEATURE_COUNT requests (enough
# for a p99); the conversation list is asked at its first page and at page
# CONV_DEEP_PAGE (conversations 501-550); a new device catches up on the
# newest CATCHUP_MSGS of c0's messages in sync pages of CATCHUP_LIMIT,
# CATCHUP_RUNS times. The search words are in prefill.c's bodies.
ASKER, ASKER_PEERS = "c0", 999
CONV_LIMIT, CONV_DEEP_PAGE = 50, 10
SEARCH_LIMIT = 20
SEARCHES = [("rare word", "zeppelin"), ("common word", "meeting"), ("3-byte substring", "ing")]
CATCHUP_MSGS, CATCHUP_LIMIT = 10000, 500
FEATURE_COUNT, CATCHUP_RUNS = (200, 5) if QUICK else (500, 20)
# ONLY=rpc: the RPC phase alone (bench/results/rpc.md and rpc.json).
ONLY = os.environ.get("ONLY", "")
# Persistent sessions logging in again after a broker restart (runs.py
# run_resume), each with its own device token or its password.
RESUME_USERS = 1000 if QUICK else 15000
RESUME_CONCURRENCY = 64
TOKEN_SEED = "mqchat-bench"
NPAIRS_USERS = max(100, CONN_USERS // 2)   # s0.., r0..
LOADS = [("pairs", 10, 0), ("pairs", 10, 1), ("pairs", 100, 0), ("pairs", 100, 1),
         ("fanout", MEMBERS, 0), ("fanout", MEMBERS, 1)]
if QUICK:
    LOADS = [("pairs", 10, 0), ("pairs", 100, 1), ("fanout", MEMBERS, 0)]
WINDOW = {10: 8, 100: 2}   # messages in flight per publisher
# Paced runs (deliveries/s) for CPU per message and latency: the same work
# per wake-up in every setup, well below the slowest setup's capacity.
PACE = {"pairs": 5000, "fanout": 10000}
DROP_LINE = "Outgoing messages are being dropped"
# Messages stored so far, cheaply: every stored message takes the next seq
# (duplicates and receipts take none), and max(seq) is one index look-up
# where count(*) walks a million rows, stealing a core from what is measured.
STORED_SQL = "SELECT coalesce(max(seq), 0) FROM messages"
# The send limit is on, so its cost is measured, but high enough that no
# load here is ever refused (a bench sender is no person).
SEND_LIMIT_OPTS = ["plugin_opt_send_rate 1000000", "plugin_opt_send_burst 1000000"]

TITLES = {
    "a": "mosquitto, anonymous, no ACL (ceiling)",
    "b": "mosquitto, password_file + acl_file (%u patterns)",
    "c": "mosquitto, dynamic-security plugin",
    "d": "mosquitto + mqchat plugin",
    "e": "mosquitto + mqchat plugin + archiver",
}


def load_name(kind, n, qos):
    """A load's key in the results: pairs10_q0, fanout100_q1."""
    return "%s%d_q%d" % (kind, n, qos)
