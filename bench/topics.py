"""topics.py - the topic table of common/topic.c, for the Python benches.

mqchat-bench prints the table (its mode "topics") as str.format templates,
so the benches spell no topic themselves:

    topic("inbox", "r0", "s1")      chat/inbox/r0/s1
    topic("rpc_resp", "alice")      chat/rpc/alice/resp
"""
import functools
import json
import os
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


@functools.lru_cache(maxsize=None)
def _table():
    bench = os.path.join(ROOT, os.environ.get("BUILD", "build"), "mqchat-bench")
    out = subprocess.run([bench, "topics"], check=True, capture_output=True, text=True,
                         timeout=30).stdout
    return json.loads(out)


def topic(kind, a, b=""):
    """The topic (or filter, with "+" or "#" levels) of kind with its levels."""
    return _table()[kind].format(a=a, b=b)
