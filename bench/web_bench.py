#!/usr/bin/python3
"""web_bench.py - the web app's figures, the web phase of `make bench`.

Starts what the browser tests start (tests/integration/web_util.py: a
broker with the plugin and a WebSockets listener, the archiver serving
$(BUILD)/web), fills one direct conversation with 10,000 messages over
MQTT, runs bench/web_bench.mjs in headless Chromium and writes
bench/results/web.md and web.json: first-visit transfer, time to the
conversation list, send-to-show latency between two browsers, frame
times while scrolling back through the 10,000 messages, each against its
target. Everything it starts is stopped by its PID; every wait is bounded.

Environment: BUILD (default build), QUICK=1 (fewer loads and messages, a
2,000-message conversation), OUT (default bench/results), PHASES (a
comma-separated part of transfer,list,latency,scroll). Skipped, with a
line saying why, when Chromium or node is missing.
"""
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("BUILD", "build")

import harness  # noqa: E402
import web_util  # noqa: E402
from archiver_util import inbox  # noqa: E402

QUICK = os.environ.get("QUICK") == "1"
OUT = os.path.join(ROOT, os.environ.get("OUT", os.path.join("bench", "results")))
LOADS = 10 if QUICK else 30
MESSAGES = 50 if QUICK else 200
LONG = 2000 if QUICK else 10000
PASSWORD = web_util.PASSWORD
# PHASES=scroll (say) runs some of them: transfer, list, latency, scroll.
PHASES = os.environ.get("PHASES", "transfer,list,latency,scroll")

TARGETS = {
    "transfer": ("first visit on the wire (login page and app)", 300 * 1000, "bytes"),
    "list_p50": ("navigation to the conversation list, p50", 500, "ms"),
    "latency_p50": ("send in one browser to shown in the other, p50", 30, "ms"),
    "latency_p99": ("send in one browser to shown in the other, p99", 100, "ms"),
    "frame_max": ("longest frame while scrolling back", 50, "ms"),
}


def log(*a):
    print("web_bench:", *a, file=sys.stderr, flush=True)


def pct(xs, p):
    """Nearest-rank percentile."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def summary(xs):
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "p50": round(statistics.median(xs), 2), "p99": round(pct(xs, 99), 2),
            "max": round(max(xs), 2), "min": round(min(xs), 2)}


def fill(stack, n):
    """n texts from dora to alice, over MQTT as any app sends them."""
    c = harness.Client(stack.broker.port, "dora", PASSWORD, client_id="dora@bench")
    assert c.connect() == 0
    try:
        t0 = int(time.time() * 1000) - n * 60
        infos = []
        for i in range(n):
            body = "message %d of %d in a long conversation, with a few words to wrap %s" % (
                i + 1, n, "lorem ipsum " * (i % 5))
            infos.append(c.c.publish(inbox("alice", "dora"), json.dumps(
                {"id": "long%06d" % i, "type": "text", "body": body, "ts": t0 + i * 60}), qos=1))
        for info in infos:
            info.wait_for_publish(timeout=60)
    finally:
        c.close()
    harness.wait_for(lambda: stack.rows("SELECT count(*) FROM messages")[0][0] >= n, 120, interval=0.2,
                     what="%d archived messages" % n)


def run():
    why = web_util.skip_reason()
    if why:
        log("skipped:", why)
        return None, why
    web_util.npm_ci()
    stack = web_util.Stack(registration="off", users=["alice", "bob", "dora"])
    stack.start()
    try:
        log("filling a conversation with %d messages" % LONG)
        fill(stack, LONG)
        argv = ["node", os.path.join(ROOT, "bench", "web_bench.mjs"), "--url", stack.url,
                "--user", "alice", "--peer", "bob", "--scroll-peer", "dora", "--password", PASSWORD,
                "--loads", str(LOADS), "--messages", str(MESSAGES), "--chromium", web_util.CHROMIUM,
                "--phases", PHASES]
        log("running", " ".join(a if a != PASSWORD else "***" for a in argv[1:]))
        # Its own process group: Chromium goes with it whatever happens.
        p = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, start_new_session=True)
        try:
            out, _ = p.communicate(timeout=900)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        try:
            res = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            return None, "web_bench.mjs printed no result (exit %d)" % p.returncode
        return res, None
    finally:
        stack.stop()


def steps_median(steps):
    """Per step name, the median of its times over the loads."""
    keys = {}
    for st in steps:
        for k, v in list(st.items()) + list((st.get("marks") or {}).items()):
            if isinstance(v, (int, float)):
                keys.setdefault(k, []).append(v)
    return {k: round(statistics.median(v)) for k, v in sorted(keys.items(), key=lambda kv: statistics.median(kv[1]))}


def figures(res):
    tr = res.get("transfer") or {}
    lst = summary((res.get("list") or {}).get("ms", []))
    lat = summary((res.get("latency") or {}).get("ms", []))
    sc = res.get("scroll") or {}
    frames = sc.get("frames") or []
    fr = summary(frames)
    lt = sc.get("longtasks")
    got = {
        "transfer": tr.get("with_app_bytes"),
        "list_p50": lst.get("p50"),
        "latency_p50": lat.get("p50"),
        "latency_p99": lat.get("p99"),
        "frame_max": fr.get("max"),
    }
    met = {k: (v is not None and v < TARGETS[k][1]) for k, v in got.items()}
    return {
        "transfer": {"login_page_bytes": tr.get("login_page_bytes"), "with_app_bytes": tr.get("with_app_bytes"),
                     "requests": tr.get("requests"),
                     "files": sorted(tr.get("files") or [], key=lambda f: -f.get("bytes", 0))},
        "list_ms": lst,
        "list_steps": steps_median((res.get("list") or {}).get("steps", [])),
        "latency_ms": lat,
        "transit_ms": summary((res.get("latency") or {}).get("transit_ms", [])),
        "sender_ms": summary((res.get("latency") or {}).get("sender_ms", [])),
        "receiver_ms": summary((res.get("latency") or {}).get("receiver_ms", [])),
        "scroll": {"frames": fr, "frames_over_50ms": sum(1 for f in frames if f >= 50),
                   "frames_over_16_7ms": sum(1 for f in frames if f > 16.7 * 1.5),
                   "longtask_max_ms": round(max(lt), 1) if lt else (0 if lt == [] else None),
                   "longtasks": len(lt) if lt is not None else None,
                   "seconds": sc.get("seconds"), "wheels": sc.get("wheels"), "shown": sc.get("shown"),
                   "first": sc.get("first"), "more": sc.get("more")},
        "targets": {k: {"what": TARGETS[k][0], "target": TARGETS[k][1], "unit": TARGETS[k][2],
                        "got": got[k], "met": met[k]} for k in TARGETS},
        "errors": (res.get("list") or {}).get("errors", []) + (res.get("latency") or {}).get("errors", [])
        + sc.get("errors", []),
    }


def markdown(doc):
    f = doc["figures"]
    L = ["# Web app figures", "",
         "`make bench` (bench/web_bench.py + bench/web_bench.mjs), %s, %s, %s." % (
             doc["date"], doc["chromium"], "QUICK=1" if QUICK else "full run"),
         "Headless Chromium on loopback, the archiver serving `$(BUILD)/web` with gzip, "
         "a broker with the plugin and a WebSockets listener; %d-message conversation." % LONG,
         "Load average (1, 5, 15 min) before %s, after %s on %d cores: figures taken on a busy "
         "machine are upper bounds." % (doc.get("loadavg_before"), doc.get("loadavg_after"), os.cpu_count() or 0), "",
         "| target | got | target | met |", "|---|---|---|---|"]
    for k, t in f["targets"].items():
        got = "n/a" if t["got"] is None else ("%d bytes" % t["got"] if t["unit"] == "bytes" else "%.1f ms" % t["got"])
        lim = "< %d bytes" % t["target"] if t["unit"] == "bytes" else "< %d ms" % t["target"]
        L.append("| %s | %s | %s | %s |" % (t["what"], got, lim, "yes" if t["met"] else "**no**"))
    L += ["", "## Details", ""]
    tr = f["transfer"]
    L.append("- First visit: login page %s bytes, with the app after logging in %s bytes, %s requests. "
             "Largest: %s." % (tr["login_page_bytes"], tr["with_app_bytes"], tr["requests"], ", ".join(
                 "%s %d (%s)" % (x.get("url", "").split("/", 3)[-1] or "/", x.get("bytes", 0), x.get("encoding") or "identity")
                 for x in tr["files"][:6])))
    s = f["list_ms"]
    L.append("- Conversation list shown, from navigation start, with a stored token (%s loads): "
             "p50 %s ms, p99 %s ms, max %s ms." % (s.get("n"), s.get("p50"), s.get("p99"), s.get("max")))
    st = f.get("list_steps") or {}
    if st:
        L.append("  Medians of where that time goes (ms from navigation start): %s." % ", ".join(
            "%s %s" % (k, v) for k, v in st.items()))
    s = f["latency_ms"]
    L.append("- Send to show (click on #send in one page, MutationObserver in the other; %s messages one "
             "after another): p50 %s ms, p99 %s ms, max %s ms." % (s.get("n"), s.get("p50"), s.get("p99"), s.get("max")))
    tr2 = f.get("transit_ms") or {}
    if tr2.get("n"):
        L.append("  Of which the WebSocket frame's way from the sender's page out to the other page in "
                 "(broker and plugin; the browser's own stamps): p50 %s ms, p99 %s ms; the rest is the two "
                 "pages' own work (the click to the frame out, the frame in to the DOM)." % (tr2.get("p50"), tr2.get("p99")))
    se, re_ = f.get("sender_ms") or {}, f.get("receiver_ms") or {}
    if se.get("n") and re_.get("n"):
        L.append("  In the pages (their own clock): the sender's, from the click to the frame handed to its "
                 "WebSocket, p50 %s ms, p99 %s ms; the receiver's, from the frame's message event to the "
                 "body in its DOM, p50 %s ms, p99 %s ms." % (se.get("p50"), se.get("p99"), re_.get("p50"),
                                                             re_.get("p99")))
    sc = f["scroll"]
    fr = sc["frames"]
    L.append("- Scroll back to the first of %d messages with the mouse wheel (%s wheel steps, %.1f s): "
             "%s frames, p50 %s ms, p99 %s ms, max %s ms; %s frames of 50 ms or more; longest task %s ms "
             "(%s long tasks). First message shown: %r." % (
                 LONG, sc.get("wheels"), sc.get("seconds") or 0, fr.get("n"), fr.get("p50"), fr.get("p99"),
                 fr.get("max"), sc["frames_over_50ms"], sc["longtask_max_ms"], sc["longtasks"], sc.get("first")))
    L.append("- A frame longer than the longest task was the machine's, not the page's: the renderer "
             "waited for a core (see the load average above).")
    if f["errors"]:
        L.append("- Page errors seen: %s" % "; ".join(f["errors"][:5]))
    return "\n".join(L) + "\n"


LOAD_BEFORE = None


def main():
    global LOAD_BEFORE
    LOAD_BEFORE = [round(x, 2) for x in os.getloadavg()]
    t0 = time.monotonic()
    res, why = run()
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "quick": QUICK, "messages_in_conversation": LONG}
    if res is None:
        print("web bench: not run: %s" % why)
        return 0 if why and web_util.skip_reason() else 1
    doc["chromium"] = res.get("chromium")
    if res.get("error"):
        doc["error"] = res["error"]
    doc["figures"] = figures(res)
    doc["loadavg_before"] = LOAD_BEFORE
    doc["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    doc["seconds"] = round(time.monotonic() - t0, 1)
    os.makedirs(OUT, exist_ok=True)
    md = markdown(doc)
    if doc.get("error"):
        md += "\nThe run stopped early: %s\n" % doc["error"].splitlines()[0]
    for name, text in (("web.json", json.dumps(doc, indent=1) + "\n"), ("web.md", md)):
        tmp = os.path.join(OUT, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(OUT, name))
    print(md)
    return 1 if doc.get("error") else 0


def stop(signum, frame):
    # SIGTERM (Ctrl-C's SIGINT already does) unwinds, so every finally
    # stops what it started.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop)
    sys.exit(main())
