"""test_cmdline.py - the one command-line convention of both programs
(common/cmdline.h), for build/mqchat and build/mqchat-archiver alike:
-h/--help at the top and on every command prints usage on stdout and exits
0; an unknown option or a missing option argument exits 2 with exactly one
line on stderr naming the option and pointing at the command's --help;
options may come after the operands; `--` ends the options, so an operand
may start with '-'."""
import pytest

import cli_util
from cli_util import initdir  # noqa: F401 (fixture)
import client_util
from client_util import Listener, texts, users

CLIENT_COMMANDS = ["register", "send", "listen", "chat", "history", "sync", "rooms", "who",
                   "whois", "profile", "passwd", "block", "unblock", "blocked"]

ARCHIVER_COMMANDS = [["run"], ["init"], ["purge"], ["stats"]] + \
    [["user", c] for c in ("add", "passwd", "disable", "enable", "del", "nick", "export", "list",
                           "show")] + \
    [["room", c] for c in ("create", "add", "remove", "del", "list")] + \
    [["invite", c] for c in ("create", "list", "revoke")]


@pytest.fixture
def broker(store, make_broker):
    users(store, "alice", "bob")
    return make_broker()


def client(datadir, *args, stdin=None):
    """build/mqchat without a broker: only what is decided before connecting."""
    return client_util.mqchat(None, datadir, "alice", *args, port=1, stdin=stdin)


def one_error_line(r, text, cmd):
    """Exit 2, nothing on stdout, exactly one line on stderr: text, then the
    pointer at the command's help."""
    assert r.rc == 2, r
    assert r.out == "", r
    assert r.err == "Error: %s (see `%s --help`)\n" % (text, cmd), r


# ---- build/mqchat ----

@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_client_help_at_the_top(datadir, flag):
    r = client(datadir, flag)
    assert r.rc == 0 and r.err == "", r
    assert r.out.startswith("usage: mqchat ")
    for c in CLIENT_COMMANDS:
        assert "\n  %s" % c in r.out, c
    assert client(datadir, "help").out == r.out


@pytest.mark.parametrize("cmd", CLIENT_COMMANDS)
def test_client_help_of_every_command(datadir, cmd):
    for flag in ("--help", "-h"):
        r = client(datadir, cmd, flag)
        assert r.rc == 0 and r.err == "", (flag, r)
        assert r.out.startswith("usage: mqchat %s" % cmd) and r.out.count("\n") == 1, r
    # after an operand too
    r = client(datadir, cmd, "bob", "--help")
    assert r.rc == 0 and r.out.startswith("usage: mqchat %s" % cmd), r


@pytest.mark.parametrize("cmd", CLIENT_COMMANDS)
def test_client_unknown_option_is_one_line(datadir, cmd):
    one_error_line(client(datadir, cmd, "--bogus"), "unknown option '--bogus'", "mqchat " + cmd)
    one_error_line(client(datadir, cmd, "bob", "-x"), "unknown option '-x'", "mqchat " + cmd)


def test_client_option_errors(datadir):
    one_error_line(client(datadir, "--bogus", "send", "bob", "hi"), "unknown option '--bogus'",
                   "mqchat")
    one_error_line(client(datadir, "send", "bob", "--room"), "option '--room' needs an argument",
                   "mqchat send")
    one_error_line(client(datadir, "listen", "--count"), "option '--count' needs an argument",
                   "mqchat listen")
    one_error_line(client(datadir, "history", "bob", "--limit"),
                   "option '--limit' needs an argument", "mqchat history")
    one_error_line(client(datadir, "send", "bob", "--lines=yes"),
                   "option '--lines' takes no argument", "mqchat send")
    # a program's option after the command says where it goes
    one_error_line(client(datadir, "send", "bob", "hi", "--host", "h"),
                   "'--host' is a global option: put it before the command", "mqchat")
    # a missing global option argument
    r = client_util.mqchat(None, datadir, None, "--user", port=1)
    one_error_line(r, "option '--user' needs an argument", "mqchat")
    r = client(datadir, "fly")
    assert r.rc == 2 and r.err == "Error: unknown command 'fly' (see `mqchat --help`)\n", r


def test_client_options_after_operands_and_double_dash(broker, datadir):
    with Listener(broker, datadir, "bob", timeout=5) as bob:
        bob.wait_ready()
        # --lines after the operand is the option: each stdin line a message
        r = client_util.ok(broker, datadir, "alice", "send", "bob", "--lines",
                           stdin="one\ntwo\n")
        assert len(r.out.split()) == 2, r
        # after `--` it is the text
        client_util.ok(broker, datadir, "alice", "send", "bob", "--", "--lines")
        client_util.ok(broker, datadir, "alice", "send", "bob", "--", "-5", "degrees")
        # an option after the text
        r = client_util.ok(broker, datadir, "alice", "send", "bob", "json", "after", "--json")
        assert '"status":"accepted"' in r.out, r
        bob.wait_texts(5)
        assert [t[2] for t in texts(bob.lines())] == ["one", "two", "--lines", "-5 degrees",
                                                      "json after"]
    # option before the operand, value joined by '='
    r = client_util.mqchat(broker, datadir, "alice", "history", "--limit=1", "bob", timeout=1)
    assert r.rc == client_util.TIMEOUT, r   # no archiver: parsed, asked, no answer


# ---- build/mqchat-archiver ----

@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_archiver_help_at_the_top(flag):
    r = cli_util.cli(None, flag)
    assert r.rc == 0 and r.err == "", r
    assert r.out.startswith("usage: mqchat-archiver ")
    for c in ("run", "init", "user", "room", "invite", "purge", "stats"):
        assert "\n  %s " % c in r.out, c
    for group in ("user", "room", "invite"):
        g = cli_util.cli(None, group, flag)
        assert g.rc == 0 and g.out.startswith("usage: mqchat-archiver [--data DIR] %s COMMAND"
                                               % group), g


@pytest.mark.parametrize("cmd", ARCHIVER_COMMANDS, ids=" ".join)
def test_archiver_help_of_every_command(initdir, cmd):  # noqa: F811
    for flag in ("--help", "-h"):
        r = cli_util.cli(initdir, *cmd, flag)
        assert r.rc == 0 and r.err == "", (flag, r)
        assert r.out.startswith("usage: mqchat-archiver [--data DIR] %s" % " ".join(cmd)), r
    r = cli_util.cli(initdir, *cmd, "someone", "--help")
    assert r.rc == 0 and r.out.startswith("usage: mqchat-archiver [--data DIR] %s"
                                          % " ".join(cmd)), r


@pytest.mark.parametrize("cmd", ARCHIVER_COMMANDS, ids=" ".join)
def test_archiver_unknown_option_is_one_line(initdir, cmd):  # noqa: F811
    path = "mqchat-archiver " + " ".join(cmd)
    one_error_line(cli_util.cli(initdir, *cmd, "--bogus"), "unknown option '--bogus'", path)
    one_error_line(cli_util.cli(initdir, *cmd, "x", "-q"), "unknown option '-q'", path)


def test_archiver_option_errors(initdir):  # noqa: F811
    d = initdir
    one_error_line(cli_util.cli(None, "--bogus", "stats"), "unknown option '--bogus'",
                   "mqchat-archiver")
    one_error_line(cli_util.cli(None, "--data"), "option '--data' needs an argument",
                   "mqchat-archiver")
    one_error_line(cli_util.cli(d, "user", "--bogus"), "unknown option '--bogus'",
                   "mqchat-archiver user")
    one_error_line(cli_util.cli(d, "user", "add", "bob", "--kind"),
                   "option '--kind' needs an argument", "mqchat-archiver user add")
    one_error_line(cli_util.cli(d, "run", "--port"), "option '--port' needs an argument",
                   "mqchat-archiver run")
    one_error_line(cli_util.cli(d, "stats", "--json=yes"), "option '--json' takes no argument",
                   "mqchat-archiver stats")
    one_error_line(cli_util.cli(d, "user", "list", "--data", d),
                   "'--data' is a global option: put it before the command", "mqchat-archiver")


def test_archiver_options_after_operands_and_double_dash(initdir):  # noqa: F811
    d = initdir
    cli_util.ok(d, "user", "add", "bob", "--kind", "device", "--password-stdin",
                stdin=cli_util.PASSWORD + "\n")
    cli_util.ok(d, "user", "add", "--password-stdin", "carol", stdin=cli_util.PASSWORD + "\n")
    assert cli_util.ok(d, "user", "show", "bob", "--json").out.count('"device"') == 1
    cli_util.ok(d, "room", "create", "lab", "--retention", "7")
    assert cli_util.ok(d, "room", "add", "lab", "--", "bob", "carol").out == \
        "bob added to lab\ncarol added to lab\n"
    # after `--` a word starting with '-' is an operand (here: not a valid name)
    r = cli_util.fails(d, cli_util.INVALID, "user", "show", "--", "-x")
    assert r.err.startswith("Error: invalid user name '-x'"), r
    # a value that starts with '-' is still the option's value
    cli_util.fails(d, cli_util.USAGE, "room", "create", "lab2", "--retention", "-1",
                   err="--retention needs a number of days (1..36500)")
