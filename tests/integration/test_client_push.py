"""test_client_push.py - the client's push and mute commands (client/README.md;
docs/PROTOCOL.md "Push notifications"; docs/PUSH.md) against the real broker,
plugin and archiver: what each prints, its exit code, every refusal said in
words; and a webhook registered by `mqchat push webhook` getting a
notification signed with the secret it printed (the fake checks it)."""
import json
import re

import pytest

import harness
from client_util import (FAILED, OK, USAGE, add_archiver_account, archivers, mqchat,  # noqa: F401
                         ok, users)
from push_fakes import WebhookFake

SECRET = re.compile(r"^secret: ([A-Za-z0-9_-]{16,})$", re.M)
WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def offline(datadir, *args):
    """A run that never gets to connect (port 1): the command line's checks."""
    return mqchat(None, datadir, "alice", *args, port=1)


def fails(b, datadir, user, *args, rc=FAILED):
    """A run that fails with rc: nothing on stdout, its one line on stderr."""
    r = mqchat(b, datadir, user, *args)
    assert r.rc == rc and r.out == "" and r.err.count("\n") == 1, r
    return r.err.rstrip("\n")


def world(store, make_broker, datadir, archivers, extra=()):
    users(store, "alice", "bob", "carol")
    store.add_room("lobby", ["alice", "bob"])
    add_archiver_account(store)
    b = make_broker()
    archivers(datadir, store, b, "alice", extra=list(extra))
    return b


@pytest.fixture
def webhooks_on(store, make_broker, datadir, archivers):
    """Webhooks on, https only (the operator's default for push_allow_http)."""
    return world(store, make_broker, datadir, archivers, ["--push-webhook", "on"])


@pytest.fixture
def plain(store, make_broker, datadir, archivers):
    """An archiver as it starts by default: no webhooks."""
    return world(store, make_broker, datadir, archivers)


# ---- the command line, decided before connecting ----

@pytest.mark.parametrize("cmd", [["push", "webhook", "https://example.org/h"], ["push", "list"],
                                 ["push", "remove"], ["push", "previews"], ["mute", "bob"],
                                 ["unmute", "bob"], ["mutes"]], ids=" ".join)
def test_help_and_unknown_option(datadir, cmd):
    path = " ".join(cmd[:2] if cmd[0] == "push" else cmd[:1])
    r = offline(datadir, *cmd, "--help")
    assert r.rc == OK and r.err == "" and r.out.startswith("usage: mqchat %s" % path), r
    r = offline(datadir, *cmd, "--bogus")
    assert (r.rc, r.out) == (USAGE, ""), r
    assert r.err == "Error: unknown option '--bogus' (see `mqchat %s --help`)\n" % path, r


def test_group_help_and_bad_words(datadir):
    r = offline(datadir, "push", "--help")
    assert r.rc == OK and r.out.splitlines() == [
        "usage: mqchat push webhook URL [--json]", "usage: mqchat push list [--json]",
        "usage: mqchat push remove [DEVICE] [--json]", "usage: mqchat push previews [on|off] [--json]"], r
    top = offline(datadir, "--help").out
    for line in ("\n  push webhook URL", "\n  mute USER|#ROOM [--for", "\n  unmute USER|#ROOM",
                 "\n  mutes [--json]"):
        assert line in top
    r = offline(datadir, "push")
    assert r.rc == USAGE and r.err.startswith("Error: missing command after push\n"), r
    r = offline(datadir, "push", "subscribe")
    assert (r.rc, r.err) == (USAGE, "Error: unknown command 'push subscribe' (see `mqchat push --help`)\n"), r
    r = offline(datadir, "push", "previews", "maybe")
    assert r.rc == USAGE and r.err.startswith("Error: push previews: expected on or off, not 'maybe'\n"), r
    r = offline(datadir, "push", "remove", "my phone")
    assert r.rc == USAGE and r.err.startswith("Error: invalid device name 'my phone': "), r
    r = offline(datadir, "mute", "Bob")
    assert r.rc == USAGE and r.err.startswith("Error: invalid user name 'Bob': "), r
    r = offline(datadir, "mute", "#Lobby")
    assert r.rc == USAGE and r.err.startswith("Error: invalid room name 'Lobby': "), r
    r = offline(datadir, "mute", "bob", "carol")
    assert r.rc == USAGE and r.err.startswith("Error: unexpected argument 'carol'"), r
    r = offline(datadir, "mute")
    assert (r.rc, r.err) == (USAGE, "usage: mqchat mute USER|#ROOM [--for 30m|8h|2d|SECONDS] [--json]\n"), r


@pytest.mark.parametrize("value", ["3x", "0", "-5", "0m", "8 h", "h", "400d", "99999999999999999999", ""])
def test_bad_for_values(datadir, value):
    r = offline(datadir, "mute", "bob", "--for", value)
    assert r.rc == USAGE and r.out == "", r
    assert r.err.startswith("Error: --for: expected a duration like 30m, 8h, 2d or seconds (at most "
                            "365 days), not '%s'\n" % value), r


@pytest.mark.parametrize("url,why", [
    ("ftp://example.org/h", "expected an https:// URL"),
    ("example.org/h", "expected an https:// URL"),
    ("https://", "no host after the scheme"),
    ("https:///path", "no host after the scheme"),
    ("https://example.org/a b", "a space or control character in it"),
    ("https://example.org/" + "x" * 2100, "longer than 2,048 bytes"),
])
def test_bad_webhook_urls(datadir, url, why):
    r = offline(datadir, "push", "webhook", url)
    assert r.rc == USAGE and r.out == "" and r.err.startswith("Error: invalid webhook URL '"), r
    assert r.err.endswith(": %s\n" % why), r


# ---- against the archiver ----

def test_webhook_not_configured(plain, datadir):
    assert fails(plain, datadir, "alice", "push", "webhook", "https://example.org/h") == \
        "Error: cannot register the webhook: the server has no webhook push set up (its " \
        "operator turns it on: docs/PUSH.md)"
    assert ok(plain, datadir, "alice", "push", "list").out == "no push targets\n"


def test_webhook_register_list_remove(webhooks_on, datadir):
    b = webhooks_on
    r = ok(b, datadir, "alice", "push", "webhook", "https://example.org/hook/1")
    lines = r.out.splitlines()
    assert lines[0] == "webhook of device test registered: https://example.org/hook/1", r
    assert SECRET.search(r.out), r
    assert "HMAC-SHA256" in r.out and '"<X-Mqchat-Timestamp>.<body>"' in r.out, r
    r = ok(b, datadir, "alice", "push", "list")
    assert re.match(r"^test: webhook, since %s, nothing delivered yet \(this device\)\n$" % WHEN, r.out), r
    doc = json.loads(ok(b, datadir, "alice", "push", "list", "--json").out)
    assert doc["device"] == "test" and doc["provider"] == "webhook" and doc["failures"] == 0, doc
    # another device's, by --json; the list names both, this device's marked
    r = ok(b, datadir, "alice", "push", "webhook", "https://example.org/hook/2", "--json", device="bot")
    doc = json.loads(r.out)
    assert doc["ok"] is True and doc["device"] == "bot" and doc["provider"] == "webhook" and doc["secret"], doc
    out = ok(b, datadir, "alice", "push", "list").out
    assert sorted(ln.split(":")[0] for ln in out.splitlines()) == ["bot", "test"], out
    assert "(this device)" not in [ln for ln in out.splitlines() if ln.startswith("bot:")][0]
    # bob sees none of alice's
    assert ok(b, datadir, "bob", "push", "list").out == "no push targets\n"
    # remove: another device by name, this one by default
    r = ok(b, datadir, "alice", "push", "remove", "bot")
    assert r.out == "push target of bot removed: it gets no more notifications\n", r
    r = ok(b, datadir, "alice", "push", "remove", "--json")
    assert json.loads(r.out) == {"ok": True, "removed": 1}, r
    assert ok(b, datadir, "alice", "push", "list").out == "no push targets\n"
    assert fails(b, datadir, "alice", "push", "remove") == \
        "Error: cannot remove the push target of test: device test has no push target (see " \
        "`mqchat push list`)"


def test_webhook_http_refused_unless_allowed(webhooks_on, datadir):
    err = fails(webhooks_on, datadir, "alice", "push", "webhook", "http://127.0.0.1:9/hook")
    assert err.startswith("Error: cannot register the webhook: ") and \
        err.endswith(" (this server takes https:// URLs only)"), err
    assert "bad_request" in err, err
    assert ok(webhooks_on, datadir, "alice", "push", "list").out == "no push targets\n"


def test_previews(webhooks_on, datadir):
    b = webhooks_on
    off = "previews: off (notifications say who wrote, never what)\n"
    on = "previews: on (notifications carry the first 200 characters of a text)\n"
    assert ok(b, datadir, "alice", "push", "previews").out == off
    assert ok(b, datadir, "alice", "push", "previews", "on").out == on
    assert ok(b, datadir, "alice", "push", "previews").out == on
    assert json.loads(ok(b, datadir, "alice", "push", "previews", "off", "--json").out) == \
        {"ok": True, "previews": False}
    assert ok(b, datadir, "bob", "push", "previews").out == off


def test_mute_unmute_mutes(plain, datadir):
    b = plain
    assert ok(b, datadir, "alice", "mutes").out == "no muted conversations\n"
    r = ok(b, datadir, "alice", "mute", "bob")
    assert r.out == "muted bob until you unmute it: no notifications from it\n", r
    r = ok(b, datadir, "alice", "mute", "#lobby", "--for", "30m")
    assert re.match(r"^muted #lobby for 30 minutes \(until %s\): no notifications from it\n$" % WHEN,
                    r.out), r
    out = ok(b, datadir, "alice", "mutes").out
    assert sorted(out.splitlines()) == sorted([
        "bob (until you unmute it)",
        [ln for ln in out.splitlines() if ln.startswith("#lobby")][0]]), out
    assert re.search(r"^#lobby \(until %s\)$" % WHEN, out, re.M), out
    docs = [json.loads(ln) for ln in ok(b, datadir, "alice", "mutes", "--json").out.splitlines()]
    assert {"with": "bob", "until": 0} in docs, docs
    lobby = [d for d in docs if d.get("room") == "lobby"][0]
    assert lobby["until"] > 0, docs
    # --for in seconds, hours, days; --json answers the until
    doc = json.loads(ok(b, datadir, "alice", "mute", "carol", "--for", "90", "--json").out)
    assert doc["ok"] is True and doc["until"] > 0, doc
    r = ok(b, datadir, "alice", "mute", "carol", "--for", "2d")
    assert r.out.startswith("muted carol for 2 days (until "), r
    r = ok(b, datadir, "alice", "mute", "carol", "--for", "8h")
    assert r.out.startswith("muted carol for 8 hours (until "), r
    # unmute
    assert ok(b, datadir, "alice", "unmute", "bob").out == "unmuted bob\n"
    assert ok(b, datadir, "alice", "unmute", "#lobby", "--json").out == '{"ok":true}\n'
    out = ok(b, datadir, "alice", "mutes").out
    assert [ln.split()[0] for ln in out.splitlines()] == ["carol"], out
    # bob's are his own
    assert ok(b, datadir, "bob", "mutes").out == "no muted conversations\n"


def test_mute_unknown_room(plain, datadir):
    assert fails(plain, datadir, "alice", "mute", "#nowhere") == \
        "Error: cannot mute #nowhere: you are in no room nowhere"
    assert fails(plain, datadir, "carol", "mute", "#lobby", "--for", "1h") == \
        "Error: cannot mute #lobby: you are in no room lobby"
    assert ok(plain, datadir, "alice", "mutes").out == "no muted conversations\n"


def test_without_archiver_the_op_is_named(store, make_broker, datadir):
    users(store, "alice")
    b = make_broker()
    r = mqchat(b, datadir, "alice", "mute", "bob", timeout=1)
    assert r.rc == 6 and r.err == "Error: cannot mute bob: no answer from the archiver within 1 s " \
        "(is it running?)\n", r


# ---- a webhook, end to end ----

def test_webhook_gets_a_signed_notification(store, make_broker, datadir, archivers):
    """The secret printed once verifies what the archiver sends (the fake
    checks X-Mqchat-Signature with it); no text without previews."""
    hook = WebhookFake()
    try:
        b = world(store, make_broker, datadir, archivers,
                  ["--push-webhook", "on", "--push-allow-http", "1", "--push-collapse-ms", "100"])
        hid, url = hook.hook()
        r = ok(b, datadir, "alice", "push", "webhook", url)
        hook.set_secret(hid, SECRET.search(r.out).group(1))
        ok(b, datadir, "bob", "send", "alice", "see you at 8")
        hook.wait_delivered(1, key=hid, timeout=harness.DEFAULT_TIMEOUT + 10)
        hook.assert_refused_nothing()
        n = hook.notifications(hid)[0]
        assert n["type"] == "message" and n["with"] == "bob" and n["from"] == "bob", n
        assert "body" not in n, n
        # the archiver counts the delivery once its answer is in
        harness.wait_for(lambda: "last delivered" in ok(b, datadir, "alice", "push", "list").out,
                         harness.DEFAULT_TIMEOUT, what="push list to say the delivery")
        out = ok(b, datadir, "alice", "push", "list").out
        assert re.match(r"^test: webhook, since %s, last delivered %s \(this device\)\n$" % (WHEN, WHEN),
                        out), out
    finally:
        hook.stop()
