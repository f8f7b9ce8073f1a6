"""test_client_errors.py - every error path of build/mqchat: a clear
"Error: ..." on stderr, the documented exit code, and nothing lost."""
import json
import os
import subprocess
import time

import pytest

import harness
from client_util import (AUTH, DENIED, FAILED, OK, RUN_TIMEOUT, TIMEOUT, UNREACH, USAGE,
                         Listener, Result, client_env, mqchat, ok, texts, users)


@pytest.fixture
def pair(store, make_broker):
    users(store, "alice", "bob", "carol")
    store.add_room("team", ["bob", "carol"])
    store.block("carol", "alice")
    return make_broker()


def test_wrong_password_is_3(pair, datadir):
    r = mqchat(pair, datadir, "alice", "send", "bob", "x", password="wrong-password")
    assert r.rc == AUTH, r
    assert r.err.startswith("Error: login as alice refused: wrong user name or password")
    r = mqchat(pair, datadir, "nobody", "listen", "--for", "1")
    assert r.rc == AUTH, r


def test_unreachable_broker_is_5(pair, datadir):
    port = harness.free_port()
    r = mqchat(pair, datadir, "alice", "send", "bob", "x", port=port)
    assert r.rc == UNREACH, r
    assert r.err.startswith("Error: cannot reach the broker at 127.0.0.1:%d" % port)
    r = mqchat(pair, datadir, "alice", "history", "bob", port=port)
    assert r.rc == UNREACH, r


def test_rpc_without_archiver_times_out_with_6(pair, datadir):
    r = mqchat(pair, datadir, "alice", "history", "bob", timeout=1)
    assert r.rc == TIMEOUT, r
    assert "Error: no answer from the archiver (is it running?) within 1 s" in r.err
    for cmd in (["rooms"], ["whois", "bob"], ["blocked"], ["sync"], ["block", "bob"]):
        r = mqchat(pair, datadir, "alice", *cmd, timeout=1)
        assert r.rc == TIMEOUT, (cmd, r)


def test_refused_publishes_are_1_and_nothing_reaches_anyone(pair, datadir):
    with Listener(pair, datadir, "carol", timeout=1) as carol, \
            Listener(pair, datadir, "bob", timeout=1) as bob:
        carol.wait_ready()
        bob.wait_ready()
        # carol blocked alice
        r = mqchat(pair, datadir, "alice", "send", "carol", "let me in")
        assert r.rc == FAILED, r
        assert r.err.splitlines() == ["not sent: carol blocks you"], r
        assert r.out == ""
        # alice is not a member of team
        r = mqchat(pair, datadir, "alice", "send", "--room", "team", "hello team")
        assert r.rc == FAILED, r
        # no such user
        r = mqchat(pair, datadir, "alice", "send", "nobody", "hi")
        assert r.rc == FAILED, r
        # nothing of the above reached anyone
        ok(pair, datadir, "bob", "send", "carol", "marker")
        ok(pair, datadir, "carol", "send", "bob", "marker")
        carol.wait_texts(1)
        bob.wait_texts(1)
        assert texts(carol.lines()) == [(None, "bob", "marker")]
        assert texts(bob.lines()) == [(None, "carol", "marker")]


BAD_ARGUMENTS = [
    ([], None, "usage: mqchat"),
    (["fly"], None, "Error: unknown command 'fly'"),
    (["send"], None, "usage: mqchat send"),
    (["send", "Bob", "hi"], None, "Error: invalid user name 'Bob'"),
    (["send", "--room", "a/b", "hi"], None, "Error: invalid room name 'a/b'"),
    (["send", "bob"], b"", "Error: empty message"),
    (["send", "bob"], b"\xc3\x28", "Error: message is not valid UTF-8"),
    (["send", "bob"], b"a\x00b", "Error: message contains a NUL byte"),
    (["send", "--lines", "bob"], b"ok\n\xff\n", "Error: message is not valid UTF-8"),
    (["send", "--bogus", "bob", "hi"], None, "Error: unknown option '--bogus'"),
    (["--port", "http", "send", "bob", "x"], None, "Error: --port: invalid port 'http'"),
    (["--timeout", "0", "rooms"], None, "Error: --timeout: expected seconds"),
    (["--password", "secret", "send", "bob", "x"], None, "never taken from the command line"),
    (["--device", "bad device", "listen"], None, "Error: invalid device name"),
    (["listen", "--count", "x"], None, "Error: --count: expected a positive number"),
    (["listen", "extra"], None, "Error: unexpected argument 'extra'"),
    (["history"], None, "usage: mqchat history"),
    (["history", "bob", "--limit", "1000"], None, "Error: --limit: expected 1..100"),
    (["chat"], None, "usage: mqchat chat"),
    (["whois", "B@d"], None, "Error: invalid user name 'B@d'"),
    (["block"], None, "usage: mqchat block"),
    (["register", "Alice"], None, "Error: invalid user name 'Alice'"),
    (["sync", "--after", "-1"], None, "Error: --after: expected a sequence number"),
]


def test_bad_arguments_are_2_and_send_nothing(pair, datadir):
    with Listener(pair, datadir, "bob", timeout=1) as bob:
        bob.wait_ready()
        for args, stdin, err in BAD_ARGUMENTS:
            r = mqchat(pair, datadir, "alice", *args, stdin=stdin)
            assert r.rc == USAGE, (args, r)
            assert err in r.err, (args, r)
            assert r.out == "" or r.out.startswith("usage:"), (args, r)
        # a bad input sends nothing: only the marker arrives
        ok(pair, datadir, "alice", "send", "bob", "marker")
        bob.wait_texts(1)
        bob.stop()
        assert texts(bob.lines()) == [(None, "alice", "marker")]


def test_no_user_and_no_password_are_2(pair, datadir):
    r = mqchat(pair, datadir, None, "send", "bob", "x")
    assert r.rc == USAGE and "Error: no user" in r.err, r
    r = mqchat(pair, datadir, "alice", "send", "bob", "x", password=None)
    assert r.rc == USAGE, r
    assert "Error: no password: use --password-file, MQCHAT_PASSWORD or a terminal" in r.err


def test_room_not_a_member_subscribe_refused_is_4(pair, datadir):
    r = mqchat(pair, datadir, "alice", "chat", "--room", "team", stdin="hi\n")
    assert r.rc == DENIED, r
    assert "Error: not allowed to read room team" in r.err


def test_config_file_and_password_file(pair, datadir):
    env = client_env(datadir)
    cfgdir = os.path.join(env["XDG_CONFIG_HOME"], "mqchat")
    os.makedirs(cfgdir, exist_ok=True)
    pwfile = os.path.join(datadir, "alice.pw")
    with open(pwfile, "w") as f:
        f.write("password-xxxx\n")
    os.chmod(pwfile, 0o600)
    cfg = os.path.join(cfgdir, "config")
    with open(cfg, "w") as f:
        f.write("# alice's settings\nhost = 127.0.0.1\nport = %d\nuser = alice\n"
                "password_file = %s\n" % (pair.port, pwfile))
    os.chmod(cfg, 0o644)
    # readable by others: refused before anything else
    r = mqchat(pair, datadir, None, "send", "bob", "x", password=None, port=1)
    assert r.rc == USAGE, r
    assert "is accessible by group or others; run: chmod 600" in r.err
    os.chmod(cfg, 0o600)
    with Listener(pair, datadir, "bob", timeout=1) as bob:
        bob.wait_ready()
        # user, port and password all from the config file
        import subprocess
        p = subprocess.run([harness.CLIENT, "send", "bob", "from config"], env=client_env(
            datadir, password=None), capture_output=True, timeout=30, start_new_session=True)
        assert p.returncode == OK, p
        bob.wait_texts(1)
        assert texts(bob.lines()) == [(None, "alice", "from config")]
    os.chmod(pwfile, 0o640)
    r = mqchat(pair, datadir, "alice", "--password-file", pwfile, "send", "bob", "x",
               password=None)
    assert r.rc == USAGE and "password file" in r.err and "chmod 600" in r.err, r
    with open(cfg, "w") as f:
        f.write("colour = blue\n")
    r = mqchat(pair, datadir, "alice", "send", "bob", "x")
    assert r.rc == USAGE and "unknown key 'colour'" in r.err, r


def test_register_when_registration_is_off(pair, datadir):
    r = mqchat(pair, datadir, None, "register", "dave")
    assert r.rc == FAILED, r
    # _register connects (it may ask login_status); the request is answered
    assert "Error: registration is closed on this server" in r.err, r


# ---- the broker's address: flags, then MQCHAT_HOST/MQCHAT_PORT, then the
# config file, then localhost:1883 ----

def bare(datadir, *args, env=None, config=None):
    """Run alice's client without --host and --port: the address comes from
    env and config (the config file's text; None: no config file)."""
    e = client_env(datadir, extra=env)
    path = os.path.join(e["XDG_CONFIG_HOME"], "mqchat", "config")
    if config is None:
        if os.path.exists(path):
            os.unlink(path)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(config)
        os.chmod(path, 0o600)
    p = subprocess.run([harness.CLIENT, "--device", "test", "--user", "alice", "--timeout", "5"]
                       + list(args), env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=RUN_TIMEOUT, start_new_session=True)
    return Result(p)


HOW_TO_SET = ("set it with --host and --port, MQCHAT_HOST and MQCHAT_PORT, or host and port "
              "in the config file")


def test_broker_address_from_the_environment(pair, datadir):
    port, dead = str(pair.port), str(harness.free_port())
    here = {"MQCHAT_HOST": "127.0.0.1", "MQCHAT_PORT": port}
    there = {"MQCHAT_HOST": "127.0.0.1", "MQCHAT_PORT": dead}
    with Listener(pair, datadir, "bob", timeout=1) as bob:
        bob.wait_ready()
        # no flags, no config file: the environment says where
        assert bare(datadir, "send", "bob", "by env", env=here).rc == OK
        # the environment wins over the config file
        r = bare(datadir, "send", "bob", "env over config", env=here,
                 config="host = localhost\nport = %s\n" % dead)
        assert r.rc == OK, r
        # an empty variable is unset: the config file's port then
        r = bare(datadir, "send", "bob", "config under an empty env",
                 env={"MQCHAT_HOST": "", "MQCHAT_PORT": ""},
                 config="host = 127.0.0.1\nport = %s\n" % port)
        assert r.rc == OK, r
        # the flags win over the environment
        r = bare(datadir, "--host", "127.0.0.1", "--port", port, "send", "bob", "flags over env",
                 env=there)
        assert r.rc == OK, r
        r = bare(datadir, "--port", dead, "send", "bob", "not sent", env=here)
        assert r.rc == UNREACH, r
        assert r.err.startswith("Error: cannot reach the broker at 127.0.0.1:%s: " % dead), r
        # an address that leads nowhere says which it was and how to set it
        r = bare(datadir, "send", "bob", "not sent either", env=there)
        assert r.rc == UNREACH and r.out == "", r
        assert r.err.startswith("Error: cannot reach the broker at 127.0.0.1:%s: " % dead), r
        assert HOW_TO_SET in r.err, r
        assert len(r.err.splitlines()) == 1, r
        ok(pair, datadir, "alice", "send", "bob", "marker")
        bob.wait_texts(5)
        assert [t[2] for t in texts(bob.lines())] == [
            "by env", "env over config", "config under an empty env", "flags over env", "marker"]


@pytest.mark.parametrize("value", ["abc", "0", "65536", "-1", " 1883", "1883x", "0x75b"])
def test_a_bad_MQCHAT_PORT_is_2_before_connecting(pair, datadir, value):
    env = {"MQCHAT_HOST": "127.0.0.1", "MQCHAT_PORT": value}
    # a bad value is an error even when --port would not need it: it is
    # set for every command, and would surprise the next one
    for flags in ([], ["--port", str(pair.port)]):
        r = bare(datadir, *flags, "send", "bob", "x", env=env)
        assert r.rc == USAGE and r.out == "", r
        assert r.err.splitlines() == [
            "Error: MQCHAT_PORT: invalid port '%s'" % value,
            "(MQCHAT_PORT is the broker's port, 1..65535: fix it or unset it)"], r


# ---- how long a text may be: its envelope, as published, within the
# broker's 65,536 bytes ----

PAYLOAD_MAX = 65536   # plugin/plugin.h CONFIG_DEFAULT_MAX_PAYLOAD


def envelope_len(body, **extra):
    """The length of the envelope the client publishes for body, measured
    with Python's JSON writer (not the client's)."""
    env = {"id": "A" * 26, "type": "text", "body": body, "ts": int(time.time() * 1000)}
    env.update(extra)
    return len(json.dumps(env, separators=(",", ":"), ensure_ascii=False).encode())


def most(**extra):
    """The longest plain text that fits in one message."""
    return PAYLOAD_MAX - envelope_len("", **extra)


def too_large(n, fit, escaped=None):
    if escaped is None:
        return "Error: message too large: {:,} bytes of text; at most {:,} fit in one message" \
            .format(n, fit)
    return ("Error: message too large: {:,} bytes of text, {:,} once escaped (a line break, tab, "
            "quote or backslash takes 2 bytes, another control character 6); at most {:,} fit "
            "in one message").format(n, escaped, fit)


def test_text_limit_is_the_envelope_the_broker_takes(pair, datadir):
    fit = most()
    reply = {"reply_to": "m-1", "reply_from": "bob"}
    rfit = most(**reply)
    assert fit == 65458 and rfit < fit
    with Listener(pair, datadir, "bob", "--json", timeout=1) as bob:
        bob.wait_ready()
        # too large: one line that says how long it is and how much fits,
        # exit 2, before connecting (nothing sent, no output)
        refused = [
            (["bob", "b" * (fit + 1)], None, too_large(fit + 1, fit)),
            (["bob"], "c" * 70000 + "\n", too_large(70000, fit)),
            # escaping counts: a quote takes 2 bytes of the envelope
            (["bob"], '"' * (fit // 2 + 1),
             too_large(fit // 2 + 1, fit, escaped=2 * (fit // 2 + 1))),
            # a reply's quote takes room too
            (["bob", "--reply-to", "m-1", "--reply-from", "bob", "e" * (rfit + 1)], None,
             too_large(rfit + 1, rfit)),
            # --lines: every line is checked before any is sent
            (["--lines", "bob"], "fine\n" + "d" * (fit + 1) + "\nfine too\n",
             too_large(fit + 1, fit) + " (line 2)\nnothing was sent"),
        ]
        for args, stdin, err in refused:
            r = mqchat(pair, datadir, "alice", "send", *args, stdin=stdin)
            assert (r.rc, r.out, r.err) == (USAGE, "", err + "\n"), (args, r)
        # what fits arrives whole
        ok(pair, datadir, "alice", "send", "bob", "a" * fit)
        ok(pair, datadir, "alice", "send", "bob", stdin='"' * (fit // 2))
        ok(pair, datadir, "alice", "send", "bob", "--reply-to", "m-1", "--reply-from", "bob",
           "e" * rfit)
        ok(pair, datadir, "alice", "send", "--lines", "bob", stdin="f" * fit + "\nshort\n")
        # chat over a pipe: a line too large is said (one too long to keep
        # too) and not sent; the others go
        r = mqchat(pair, datadir, "alice", "chat", "bob", device="pipe",
                   stdin="g" * (fit + 1) + "\n" + "h" * 200000 + "\n" + "i" * fit + "\n")
        assert r.rc == FAILED, r
        assert r.err.splitlines() == [too_large(fit + 1, fit), too_large(200000, fit)], r
        ok(pair, datadir, "alice", "send", "bob", "marker")
        bob.wait_lines(7)
        got = [json.loads(ln) for ln in bob.lines()]
    assert [(m["type"], m["body"]) for m in got] == [
        ("text", "a" * fit), ("text", '"' * (fit // 2)), ("text", "e" * rfit),
        ("text", "f" * fit), ("text", "short"), ("text", "i" * fit), ("text", "marker")]
    assert (got[2]["reply_to"], got[2]["reply_from"]) == ("m-1", "bob")
