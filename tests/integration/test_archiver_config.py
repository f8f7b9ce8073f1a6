"""`run` options and config file: flags win over the file, the file over the
defaults; bad input stops the start with a clear error."""
import os
import signal
import subprocess

import harness
from archiver_util import arch_env  # noqa: F401 (fixture)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run(datadir, *args, timeout=10):
    return subprocess.run([harness.ARCHIVER, "--data", datadir, "run"] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def test_bad_options_and_files(datadir):
    cases = [
        (["--port", "0"], 2, 'invalid value "0" for port'),
        (["--port", "x"], 2, "invalid value"),
        (["--connections", "17"], 2, "for connections"),
        (["--retention", "-1"], 2, "for retention_days"),
        (["--registration", "maybe"], 2, "for registration"),
        (["extra"], 2, 'unexpected argument "extra"'),
        (["-c", os.path.join(datadir, "missing.conf")], 1, "missing.conf"),
    ]
    for args, rc, text in cases:
        r = run(datadir, *args)
        assert r.returncode == rc, (args, r)
        assert "Error: " in r.stderr and text in r.stderr, (args, r.stderr)
        assert "usage:" in r.stderr
    # An unknown option or a missing value: one line, as every command says it.
    for args, text in ((["--bogus"], "unknown option '--bogus'"),
                       (["--port"], "option '--port' needs an argument")):
        r = run(datadir, *args)
        assert r.returncode == 2, (args, r)
        assert r.stderr == "Error: %s (see `mqchat-archiver run --help`)\n" % text, (args, r)
    conf = os.path.join(datadir, "bad.conf")
    for body, text in (("port = 1883\nfrobnicate = 1\n", "bad.conf:2: unknown setting \"frobnicate\""),
                       ("# c\n\nport 1883\n", "bad.conf:3: expected \"key = value\""),
                       ("retention_days = soon\n", "bad.conf:1: invalid value \"soon\"")):
        with open(conf, "w") as f:
            f.write(body)
        r = run(datadir, "-c", conf)
        assert r.returncode != 0 and text in r.stderr, r.stderr
    r = run(datadir, "--help")
    assert r.returncode == 0 and "usage:" in r.stdout


def test_missing_password_or_store(datadir):
    r = run(datadir, "--port", "1")
    assert r.returncode == 1 and "archiver.pw" in r.stderr
    with open(os.path.join(datadir, "archiver.pw"), "w") as f:
        f.write("pw-123456789\n")
    r = run(datadir, "--port", "1")
    assert r.returncode == 1 and "auth.db" in r.stderr


def test_shipped_config_and_flags_win(arch_env):
    """config/archiver.conf parses; its port is overridden by --port (the
    archiver reaches the test broker), its registration by --registration."""
    env = arch_env(start=False)
    env.arch.args = ["-c", os.path.join(ROOT, "config", "archiver.conf"), "--registration", "off"]
    env.arch.start()
    out = env.arch.output()
    assert "registration off" in out and "retention 30 days" in out and "1 connection" in out
    assert env.arch.stop() == 0


def test_sighup_reopens_log(arch_env):
    env = arch_env(start=False)
    log = os.path.join(env.datadir, "archiver.log")
    env.arch.args += ["--log", log]
    env.arch.start(wait=False)
    harness.wait_for(lambda: os.path.exists(log) and "subscribed" in open(log).read(), what="log file")
    os.rename(log, log + ".1")
    env.arch.proc.proc.send_signal(signal.SIGHUP)
    harness.wait_for(lambda: os.path.exists(log) and "log reopened" in open(log).read(), what="reopened log")
    assert env.arch.stop() == 0
