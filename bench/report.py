"""report.py - the bench driver's targets and its Markdown table.

build_targets() checks every target against its figure from the results;
markdown() turns the whole results document (what latest.json holds) into
latest.md. Neither measures anything.
"""
from settings import (ASKER, ASKER_PEERS, CATCHUP_LIMIT, CATCHUP_MSGS, CONV_DEEP_PAGE, CONV_LIMIT,
                      DROP_LINE, KEY_LOAD, LOADS, PACE, ROOM, SEARCH_LIMIT, SEARCHES, load_name)


def fmt(v, nd=0):
    if v is None:
        return "n/a"
    if nd == 0:
        return "{:,.0f}".format(v)
    return "{:,.{nd}f}".format(v, nd=nd)


def ratio(v, base):
    if v is None or not base:
        return None
    return v / base


def meets(r, op, limit):
    """Whether ratio r is op ("<=" or ">=") limit; None without an r."""
    if r is None:
        return None
    return r <= limit if op == "<=" else r >= limit


def get(results, key, test, field, sub=None):
    """A figure of setup key, or None when the setup, the test or the
    figure is missing or the test failed."""
    r = results.get(key, {})
    if not r.get("available"):
        return None
    t = r.get(test) or {}
    if sub:
        t = t.get(sub) or {}
    if "error" in t:
        return None
    v = t.get(field)
    return v if isinstance(v, (int, float)) and v >= 0 else None


def ingest_runs(e):
    """(load, archive figures) of each pairs load run with the archive
    watched, from setup (e)'s results e."""
    runs = []
    for kind, n, qos in LOADS:
        a = (e.get("ingest_" + load_name(kind, n, qos)) or {}).get("archive")
        if kind == "pairs" and a:
            runs.append(((kind, n, qos), a))
    return runs


def resume_of(resume, name, field):
    """A figure of run_resume's variant name ("a", "d_token", ...), or None."""
    r = ((resume or {}).get(name) or {}).get("resume") or {}
    v = r.get(field)
    return v if isinstance(v, (int, float)) and v >= 0 else None


def target(name, setup, value, base, limit, ok, unit="", paired_ratio=None):
    """One row of the targets table; ok None: not measured."""
    return {"target": name, "setup": setup, "value": value, "a": base,
            "ratio": ratio(value, base) if base is not None else None,
            "paired": paired_ratio,
            "limit": limit, "unit": unit,
            "verdict": "n/a" if ok is None else ("pass" if ok else "short")}


def feature_rows(rpc):
    """(key, label) of each issue 17 figure of run_rpc, in report order."""
    rows = [("conversations_first", "conversation list, first page of %d" % CONV_LIMIT),
            ("conversations_deep", "conversation list, page %d (conversations %d-%d)" % (
                CONV_DEEP_PAGE + 1, CONV_DEEP_PAGE * CONV_LIMIT + 1,
                (CONV_DEEP_PAGE + 1) * CONV_LIMIT))]
    for k, (label, text) in enumerate(SEARCHES):
        rows.append(("search_%d" % k, "search \"%s\" (%s), limit %d" % (text, label, SEARCH_LIMIT)))
    rows.append(("catchup", "new device: sync from its last seq, pages of %d, until done"
                 % CATCHUP_LIMIT))
    return rows


def rpc_targets(rpc):
    """The RPC targets: history, and issue 17's conversation list, search
    and catch-up, each on the p99 of its requests (the catch-up on the
    median of its runs, each run a whole catch-up)."""
    T = []
    rows = fmt(rpc.get("rows"))
    h = rpc.get("history") if rpc.get("available") else None
    v = h.get("p99_us") / 1000.0 if h and "p99_us" in h else None
    T.append(target("history 50 on %s messages p99 < 5 ms" % rows, "e", v, None, "5 ms",
                    None if v is None else v < 5.0, "ms"))
    F = rpc.get("features") or {}
    for key, label in feature_rows(rpc):
        r = F.get(key) or {}
        ok = "error" not in r and r.get("ok", 0) > 0
        if key == "catchup":
            v = r["p50_us"] / 1e6 if ok else None
            T.append(target("%s: %s messages < 1 s (median of %s runs)" % (
                label, fmt(r.get("messages_per_run", CATCHUP_MSGS)), r.get("ok", "n/a")), "e", v,
                None, "1 s", None if v is None else v < 1.0, "s"))
            continue
        v = r["p99_us"] / 1000.0 if ok else None
        limit = 10.0 if key.startswith("conversations") else 50.0
        what = label
        if key.startswith("conversations") and ok:
            what += " of %s's %s" % (ASKER, fmt(r.get("conversations_total")))
        T.append(target("%s on %s messages p99 < %g ms" % (what, rows, limit), "e", v, None,
                        "%g ms" % limit, None if v is None else v < limit, "ms"))
    return T


def build_targets(results, rpc, rss, kf=None, resume=None):
    """Every target with its value, (a)'s and the verdict; kf: run_key's
    figures, resume: run_resume's, or None."""
    T = []

    def add(name, setup, value, base, limit, ok, unit="", paired_ratio=None):
        T.append(target(name, setup, value, base, limit, ok, unit, paired_ratio))

    def against_a(what, op, limit, key, v, a, pr, unit, suffix=""):
        # The verdict is on the paired ratio (median of per-round ratios)
        # when there is one, else on the ratio of the medians.
        r = pr if pr is not None else ratio(v, a)
        add("%s %s %gx (a)%s" % (what, op, limit, suffix), key, v, a, "%gx" % limit,
            meets(r, op, limit), unit, pr)

    def rounds_against_a(what, op, limit, key, test, field, unit, sub=None):
        pr = (results.get(key, {}).get(test) or {}).get("paired")
        against_a(what, op, limit, key, get(results, key, test, field, sub),
                  get(results, "a", test, field, sub), pr["median"] if pr else None, unit)

    for key in ("d", "e"):
        for kind, n, qos in LOADS:
            name = load_name(kind, n, qos)
            rounds_against_a("broker CPU/msg " + name, "<=", 1.05, key, name + "_paced",
                             "cpu_us_per_msg", "us")
            rounds_against_a("msgs/s " + name, ">=", 0.95, key, name, "msgs_per_s", "/s")
        if key == "d" and kf and kf.get("cpu") and kf.get("msgs"):
            in_depth = ", %d paired rounds" % kf["rounds"]
            against_a("broker CPU/msg " + kf["load"], "<=", 1.05, key,
                      (kf["d_paced"] or {}).get("cpu_us_per_msg"),
                      (kf["a_paced"] or {}).get("cpu_us_per_msg"), kf["cpu"]["median"], "us",
                      in_depth)
            against_a("msgs/s " + kf["load"], ">=", 0.95, key,
                      (kf["d_full"] or {}).get("msgs_per_s"),
                      (kf["a_full"] or {}).get("msgs_per_s"), kf["msgs"]["median"], "/s",
                      in_depth)
        rounds_against_a("warm reconnect rate", ">=", 0.8, key, "connect", "ok_per_s", "/s",
                         "warm")
    if resume:
        users = fmt(resume.get("users"))
        against_a("%s sessions after a restart, device tokens: logins/s" % users, ">=", 0.8, "d",
                  resume_of(resume, "d_token", "ok_per_s"), resume_of(resume, "a", "ok_per_s"),
                  None, "/s")
        against_a("%s sessions after a restart, device tokens: broker CPU per login" % users,
                  "<=", 1.5, "d", resume_of(resume, "d_token", "cpu_us_per_ok"),
                  resume_of(resume, "a", "cpu_us_per_ok"), None, "us")
    if rss.get("available"):
        load_s = rss["d_start_s"]
        add("100k users + 10k rooms: start to listening < 1 s", "d", load_s, rss["a_start_s"],
            "1 s", load_s < 1.0, "s")
        if rss.get("plugin_load_ms") is not None:
            v = rss["plugin_load_ms"] / 1000.0
            add("100k users + 10k rooms: plugin's own load time < 1 s", "d", v, None, "1 s",
                v < 1.0, "s")
        add_mb = (rss["d_rss_kb"] - rss["a_rss_kb"]) / 1024.0
        add("100k users + 10k rooms: memory added (PSS, broker + loader) < 100 MB", "d", add_mb,
            None, "100 MB", add_mb < 100, "MB")
    else:
        add("100k users + 10k rooms: start < 1 s", "d", None, None, "1 s", None)
        add("100k users + 10k rooms: memory added (PSS, broker + loader) < 100 MB", "d", None,
            None, "100 MB", None)
    e = results.get("e", {})
    dr = e.get("drain")
    if dr and "error" not in dr:
        add("archiver ingest >= 50,000 msg/s stored (drain of %s queued)" % fmt(dr["messages"]),
            "e", dr["stored_per_s"], None, "50,000/s", dr["stored_per_s"] >= 50000, "/s")
    else:
        add("archiver ingest >= 50,000 msg/s stored", "e", None, None, "50,000/s", None)
    ingest = ingest_runs(e) if e.get("available") else []
    if ingest:
        lost = sum(max(0, a["final_lag"]) for _, a in ingest)
        bounded = all(a["drain_ms"] >= 0 for _, a in ingest)
        add("archiver lag bounded, nothing dropped", "e", lost, None, "0 lost, 0 log lines",
            bounded and lost == 0 and e.get("dropped_lines", 0) == 0, "msgs")
    else:
        add("archiver lag bounded, nothing dropped", "e", None, None, "0 lost", None)
    T.extend(rpc_targets(rpc))
    return T


def rpc_section(rpc, L):
    """The RPC tables of latest.md (and of rpc.md, ONLY=rpc), appended to L."""
    L.append("### RPC on a %s-message archive (e)" % fmt(rpc.get("rows")))
    L.append("")
    if rpc.get("prefill_s") is not None:
        L.append("Archive filled by `mqchat-bench prefill` with the archiver's own code "
                 "(archive__store, then archive__index_step): %s messages (%s of them %s's) in "
                 "%.1f s (%s of indexing), %s messages/s, %.0f MB. The archiver's first answer "
                 "came %s s after it connected." % (
                     fmt(rpc["rows"]), fmt(rpc.get("asker_rows")), ASKER, rpc["prefill_s"],
                     fmt(rpc.get("index_s"), 1), fmt(rpc["prefill_rows_per_s"]),
                     rpc.get("db_mb", 0), fmt(rpc.get("first_answer_s"), 2)))
        L.append("")
    if rpc.get("available"):
        L.append("| op | requests | ok | p50 (ms) | p99 (ms) |")
        L.append("|---|---:|---:|---:|---:|")
        for op in ("history", "sync"):
            r = rpc[op]
            L.append("| %s limit %d | %d | %d | %.2f | %.2f |" % (
                op, r["limit"], r["requests"], r["ok"], r["p50_us"] / 1000, r["p99_us"] / 1000))
    else:
        L.append("Not available: %s" % rpc.get("reason"))
    L.append("")
    F = rpc.get("features")
    if not F:
        return
    L.append("Issue 17, as %s (%s direct conversations and the room %s; %s reactions and %s "
             "replies among its messages), one request at a time over MQTT; the catch-up row "
             "times whole catch-ups (each run all its pages). Load average (1 min) of the "
             "machine at the phase's start and end: %s."
             % (ASKER, fmt(ASKER_PEERS), ROOM, fmt(rpc.get("reactions")), fmt(rpc.get("replies")),
                ", ".join("%.1f" % x for x in rpc.get("loadavg", []))))
    L.append("")
    L.append("| figure | requests (runs) | ok | p50 (ms) | p99 (ms) | max (ms) | answers |")
    L.append("|---|---:|---:|---:|---:|---:|---|")
    for key, label in feature_rows(rpc):
        r = F.get(key) or {"error": "not run"}
        if "p50_us" not in r or not r.get("ok"):
            L.append("| %s | | | | | | error: %s |" % (
                label, str(r.get("error", "no ok answer")).replace("|", "/")[:160]))
            continue
        if key.startswith("conversations"):
            what = "%s conversations in %s pages" % (fmt(r.get("conversations_total")),
                                                    r.get("pages"))
        elif key == "catchup":
            what = "%s messages in %s pages a run" % (fmt(r.get("messages_per_run")),
                                                     r.get("pages_per_run"))
        else:
            what = "%.1f messages an answer, more in %.0f%%" % (r.get("mean_found", 0),
                                                                100 * r.get("more_share", 0))
        if "error" in r:
            what += "; error: %s" % str(r["error"]).replace("|", "/")[:120]
        L.append("| %s | %s | %s | %.2f | %.2f | %.2f | %s |" % (
            label, fmt(r.get("requests")), fmt(r.get("ok")), r["p50_us"] / 1000,
            r["p99_us"] / 1000, r.get("max_us", 0) / 1000, what))
    L.append("")


def targets_table(targets, L):
    """The targets table, appended to L."""
    L.append("| target | setup | value | (a) | ratio | paired | verdict |")
    L.append("|---|---|---:|---:|---:|---:|---|")
    for t in targets:
        nd = 2 if t["unit"] in ("us", "ms", "s") else 0
        L.append("| %s | (%s) | %s | %s | %s | %s | %s |" % (
            t["target"], t["setup"], fmt(t["value"], nd) + (" " + t["unit"] if t["value"] is not None else ""),
            fmt(t["a"], nd) if t["a"] is not None else "", "%.2f" % t["ratio"] if t["ratio"] else "",
            "%.2f" % t["paired"] if t.get("paired") else "", t["verdict"]))
    L.append("")


def markdown_rpc(doc):
    """rpc.md: the RPC phase alone (ONLY=rpc)."""
    L = ["# mqchat benchmarks: RPC only", "",
         "`%s` on %s, %d cores (shared), mosquitto %s, %s run." % (
             doc["command"], doc["date"], doc["cores"], doc["mosquitto"],
             "QUICK" if doc["quick"] else "full"), ""]
    rpc_section(doc["rpc"], L)
    L.append("### Targets")
    L.append("")
    targets_table(doc["targets"], L)
    return "\n".join(L)


def markdown(doc):
    """latest.md: the results document doc as Markdown tables."""
    R = doc["setups"]
    keys = [k for k in "abcde" if k in R]
    L = []
    L.append("# mqchat benchmarks")
    L.append("")
    L.append("`%s` on %s, %d cores (shared), mosquitto %s, %s run. Loads ran in %d interleaved "
             "rounds of %.1f s per setup; each cell is the median round: value (ratio to (a))."
             % (doc["command"], doc["date"], doc["cores"], doc["mosquitto"],
                "QUICK" if doc["quick"] else "full", doc["rounds"], doc["seconds_per_load"]))
    L.append("")
    for k in keys:
        r = R[k]
        L.append("- (%s) %s%s" % (k, r["title"], "" if r.get("available") else
                                  ": **not available** (%s)" % r.get("reason")))
    L.append("")

    def cell(k, test, field, sub=None, nd=0, scale=1.0, with_ratio=True):
        v = get(R, k, test, field, sub)
        if v is None:
            t = (R.get(k, {}).get(test) or {})
            return "error" if R.get(k, {}).get("available") and "error" in t else "n/a"
        a = get(R, "a", test, field, sub)
        s = fmt(v * scale, nd)
        if a and k != "a" and with_ratio:
            s += " (%.2f)" % (v / a)
        return s

    def table(title, rows, with_ratio=True):
        L.append("### " + title)
        L.append("")
        L.append("| | " + " | ".join("(%s)" % k for k in keys) + " |")
        L.append("|---|" + "---:|" * len(keys))
        for label, test, field, sub, nd, scale in rows:
            L.append("| %s | %s |" % (label, " | ".join(
                cell(k, test, field, sub, nd, scale, with_ratio) for k in keys)))
        L.append("")

    def lrows(field, nd, scale=1.0, sfx=""):
        return [("%s %d, QoS %d" % ("pairs" if kind == "pairs" else "room of", n, q),
                 load_name(kind, n, q) + sfx, field, None, nd, scale) for kind, n, q in LOADS]

    table("Broker CPU per delivered message (us), paced at %s deliveries/s (pairs) and "
          "%s (room): the key figure" % (fmt(PACE["pairs"]), fmt(PACE["fanout"])),
          lrows("cpu_us_per_msg", 2, 1.0, "_paced"))
    table("Noise: max/min of that CPU per message over the %d rounds" % doc["rounds"],
          lrows("spread", 2, 1.0, "_paced"), with_ratio=False)
    table("Messages delivered per second, end to end, full speed", lrows("msgs_per_s", 0))
    table("Latency p50 (ms), paced", lrows("p50_us", 2, 0.001, "_paced"))
    table("Latency p99 (ms), paced", lrows("p99_us", 2, 0.001, "_paced"))
    table("Broker CPU per delivered message (us), full speed", lrows("cpu_us_per_msg", 2))
    table("Logins", [
        ("cold: first login /s", "connect", "ok_per_s", "cold", 0, 1.0),
        ("cold: broker CPU per login (us)", "connect", "cpu_us_per_ok", "cold", 0, 1.0),
        ("warm: reconnect /s", "connect", "ok_per_s", "warm", 0, 1.0),
        ("warm: broker CPU per login (us)", "connect", "cpu_us_per_ok", "warm", 0, 1.0),
        ("under wrong-password flood: good logins /s", "flood", "ok_per_s", "good", 0, 1.0),
        ("flood: wrong-password attempts /s", "flood", "attempts_per_s", "bad", 0, 1.0),
        ("flood: wrong passwords accepted", "flood", "ok", "bad", 0, 1.0),
    ])
    rs = doc.get("resume") or {}
    if rs:
        L.append("### Logins after a broker restart: %s persistent sessions at once, %d at a time"
                 % (fmt(rs.get("users")), rs.get("concurrency", 0)))
        L.append("")
        L.append("| | (a) no auth | (d) device tokens | (d) passwords |")
        L.append("|---|---:|---:|---:|")
        for label, field, nd in (("logins /s", "ok_per_s", 0), ("broker CPU per login (us)",
                                                                 "cpu_us_per_ok", 0),
                                 ("login p99 (ms)", "p99_us", 1)):
            a = resume_of(rs, "a", field)
            cells = []
            for name in ("a", "d_token", "d_password"):
                v = resume_of(rs, name, field)
                c = "n/a" if v is None else fmt(v / 1000.0 if field == "p99_us" else v, nd)
                if v is not None and a and name != "a":
                    c += " (%.2f)" % (v / a)
                cells.append(c)
            L.append("| %s | %s |" % (label, " | ".join(cells)))
        L.append("")
    e = R.get("e", {})
    if e.get("available"):
        L.append("### Archiver ingest (e)")
        L.append("")
        L.append("| load | published/s | stored/s | max lag | drain after stop (ms) | final lag |")
        L.append("|---|---:|---:|---:|---:|---:|")
        for (kind, n, q), a in ingest_runs(e):
            L.append("| pairs %d, QoS %d | %s | %s | %s | %s | %s |" % (
                n, q, fmt(a["published_per_s"]), fmt(a["stored_per_s"]), fmt(a["max_lag"]),
                fmt(a["drain_ms"]) if a["drain_ms"] >= 0 else "never", fmt(a["final_lag"])))
        L.append("")
        L.append("Broker log lines \"%s\": %d%s." % (
            DROP_LINE, e.get("dropped_lines", 0),
            " (for %s)" % ", ".join(e["dropped_for"]) if e.get("dropped_for") else ""))
        L.append("")
        dr = e.get("drain")
        if dr and "error" not in dr:
            L.append("Ingest capacity: %s messages queued while the archiver was stopped, then"
                     " stored in %.2f s: **%s msg/s** (median of %d rounds, %s to %s);"
                     " archiver CPU %.1f us/msg, broker CPU %.1f us/msg meanwhile." % (
                         fmt(dr["messages"]), dr["seconds"], fmt(dr["stored_per_s"]),
                         dr["rounds"], fmt(dr["min"]), fmt(dr["max"]),
                         dr["archiver_cpu_us_per_msg"], dr["broker_cpu_us_per_msg"]))
        elif dr:
            L.append("Ingest capacity: not measured (%s)." % dr["error"])
        L.append("")
    rpc_section(doc["rpc"], L)
    rss = doc["rss"]
    L.append("### Start-up and memory with %s users, %s rooms" % (fmt(rss["users"]), fmt(rss["rooms"])))
    L.append("")
    L.append("| broker | start to listening (s) | memory, PSS of broker + loader (MB) |")
    L.append("|---|---:|---:|")
    L.append("| (a) no plugin | %.3f | %.1f |" % (rss["a_start_s"], rss["a_rss_kb"] / 1024))
    if rss.get("available"):
        L.append("| (d) mqchat plugin, %s users | %.3f | %.1f |" % (
            fmt(rss["users"]), rss["d_start_s"], rss["d_rss_kb"] / 1024))
    else:
        L.append("| (d) mqchat plugin | n/a | n/a |")
    L.append("")
    kf = doc.get("key")
    if kf and kf.get("cpu") and kf.get("msgs"):
        kind, n, qos = KEY_LOAD
        L.append("### In depth: (d) against (a), %s %d, QoS %d, %d paired rounds" % (
            kind, n, qos, kf["rounds"]))
        L.append("")
        L.append("Only (a) and (d), the order swapped every round. Each round's ratio (d)/(a);")
        L.append("their median and quartiles.")
        L.append("")
        L.append("| figure | (a) median | (d) median | paired ratio | quartiles |")
        L.append("|---|---:|---:|---:|---|")
        for label, fa, fd, field, nd, p in (
                ("broker CPU per message (us), paced", "a_paced", "d_paced", "cpu_us_per_msg", 2, kf["cpu"]),
                ("messages per second, full speed", "a_full", "d_full", "msgs_per_s", 0, kf["msgs"])):
            L.append("| %s | %s | %s | %.3f | %.3f - %.3f |" % (
                label, fmt((kf[fa] or {}).get(field), nd), fmt((kf[fd] or {}).get(field), nd),
                p["median"], p["q1"], p["q3"]))
        L.append("")
    L.append("### Targets")
    L.append("")
    L.append("Ratios to (a): of the two medians, and paired (the median over the rounds of each")
    L.append("round's own ratio; the verdict uses it where there is one).")
    L.append("")
    targets_table(doc["targets"], L)
    return "\n".join(L)
