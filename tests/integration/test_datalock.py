"""test_datalock.py - one archiver daemon per data folder (common/datalock.h):
a second `mqchat-archiver run` on a folder in use is refused and names the
process holding it; the CLI keeps working beside the daemon; the lock goes
with the process, even one killed with SIGKILL."""
import os
import re
import signal
import subprocess

import harness
from archiver_util import arch_env  # noqa: F401 (fixture)
from cli_util import NODB, OK, RUNTIME, cli

ARCHIVER_LINE = re.compile(r"^(\d+) mqchat-archiver run$")


def second_run(env, timeout=20):
    """A second daemon on env's data folder, pointed at the same broker."""
    return subprocess.run([harness.ARCHIVER, "--data", env.datadir, "run", "--port",
                           str(env.broker.port)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_second_archiver_on_the_same_folder_is_refused(arch_env):
    env = arch_env(users=("alice",))
    first = env.arch.proc.proc.pid
    with open(os.path.join(env.datadir, "archiver.lock")) as f:
        assert ARCHIVER_LINE.match(f.read().strip()).group(1) == str(first)

    p = second_run(env)
    assert p.returncode == 1, p
    assert "%s is in use by pid %d (mqchat-archiver run)" % (env.datadir, first) in p.stderr, p.stderr
    # It touched nothing: no connection to the broker, the first one runs on.
    assert "connect" not in p.stderr, p.stderr
    assert env.arch.running()
    # The operators' CLI works beside the daemon, as before.
    assert cli(env.datadir, "user", "add", "bob", "--password-stdin",
               stdin="bob-password-1\n").rc == OK
    assert cli(env.datadir, "room", "create", "lab").rc == OK
    assert cli(env.datadir, "room", "add", "lab", "alice", "bob").rc == OK
    assert "bob" in cli(env.datadir, "user", "list").out
    assert cli(env.datadir, "stats").rc == OK
    assert env.arch.running()


def test_the_lock_goes_with_a_killed_daemon(arch_env):
    env = arch_env(users=("alice",))
    env.arch.stop(signal.SIGKILL)
    # No clean exit, no unlock by hand: the kernel released it.
    env.arch.start()
    assert env.arch.running()
    with open(os.path.join(env.datadir, "archiver.lock")) as f:
        assert f.read().strip() == "%d mqchat-archiver run" % env.arch.proc.proc.pid


def test_a_missing_data_folder_is_named(datadir):
    missing = os.path.join(datadir, "nothing-here")
    r = cli(missing, "run")
    assert r.rc == RUNTIME, r
    assert "%s: no such folder (run `mqchat-archiver --data %s init`)" % (
        missing, missing) in r.err, r
    assert not os.path.exists(missing)
    # The CLI's own message for a folder without stores is unchanged.
    r = cli(missing, "user", "list")
    assert r.rc == NODB and "no such file" in r.err and "init" in r.err, r
