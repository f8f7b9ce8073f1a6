"""test_readme.py - the README's commands work as written.

The shell blocks of README.md's "Accounts, devices and rooms" and
"Connecting" sections are taken from the file and run, one command at a
time and unchanged, against scripts/run.sh (make run) started on a temp
data folder and free ports. The reader's shell is played by bash: variables
a command sets are kept for the next ones, and the environment holds DATA,
PORT and TLS_PORT as a reader who gave them to make run would have them. A
command ending in '&' runs in the background, as in that shell.

Two waits are the reader's own: a subscriber started in the background may
not have subscribed when the next command publishes (a person types slower),
and a login right after `user add` may precede the broker's reload (at most
a second). Those commands are repeated, within a bound, until they have
their effect."""
import os
import re
import shutil
import signal
import subprocess
import time

import harness
import test_run_script as rs

README = os.path.join(harness.ROOT, "README.md")


def sections():
    """{heading: text} of README.md's "## " sections."""
    with open(README) as f:
        text = f.read()
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def blocks(text):
    """The commands of each ```sh block: continuation lines joined, comment
    and blank lines dropped."""
    out = []
    for body in re.findall(r"^```sh\n(.*?)^```", text, flags=re.M | re.S):
        cmds, cur = [], ""
        for line in body.splitlines():
            if not cur and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            cmds.append(cur + line)
            cur = ""
        out.append(cmds)
    return out


class Shell:
    """The reader's shell: one bash per command, sharing the variables the
    README's commands assign (saved with declare -p after each)."""

    def __init__(self, cwd, env, names):
        self.cwd = cwd
        self.env = env
        self.state = os.path.join(cwd, ".shell-state")
        open(self.state, "w").close()
        self.names = " ".join(sorted(names))
        self.background = []

    def script(self, cmd):
        return ('. "%s"\n%s\nrc=$?\ndeclare -p %s > "%s.new" 2>/dev/null\nmv "%s.new" "%s"\nexit $rc\n'
                % (self.state, cmd, self.names, self.state, self.state, self.state))

    def run(self, cmd, stdin="", timeout=30):
        p = subprocess.run(["bash", "-c", self.script(cmd)], cwd=self.cwd, env=self.env,
                           input=stdin, capture_output=True, text=True, timeout=timeout)
        return p

    def ok(self, cmd, **kw):
        p = self.run(cmd, **kw)
        assert p.returncode == 0, "README command failed (%d): %s\n%s%s" % (
            p.returncode, cmd, p.stdout, p.stderr)
        return p

    def start(self, cmd, logname):
        """A command ending in '&': started in the background; its output
        goes to a file in cwd."""
        assert cmd.rstrip().endswith("&")
        log = open(os.path.join(self.cwd, logname), "wb")
        p = subprocess.Popen(["bash", "-c", '. "%s"\nexec %s' % (self.state, cmd.rstrip()[:-1])],
                             cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        self.background.append((p, log))
        return os.path.join(self.cwd, logname)

    def stop(self):
        for p, log in self.background:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            log.close()


def assigned(cmds):
    """The variable names the commands assign."""
    names = set()
    for c in cmds:
        names.update(re.findall(r"(?:^|;|export\s+)\s*([A-Z][A-Z0-9_]*)=", c))
    return names


def read(path):
    with open(path, "rb") as f:
        return f.read().decode(errors="replace")


def holds(cond, timeout):
    """True if cond() holds within timeout seconds (polled)."""
    try:
        harness.wait_for(cond, timeout, interval=0.05)
        return True
    except AssertionError:
        return False


def until_ok(sh, cmd, done=None, timeout=15, **kw):
    """Run cmd until it succeeds and done() holds (the reader's retry)."""
    deadline = time.monotonic() + timeout
    while True:
        p = sh.run(cmd, **kw)
        if p.returncode == 0 and (done is None or holds(done, 1.0)):
            return p
        assert time.monotonic() < deadline, "README command never had its effect: %s\n%s%s" % (
            cmd, p.stdout, p.stderr)
        time.sleep(0.2)


def test_readme_commands_work_as_written():
    acc = blocks(sections()["Accounts, devices and rooms"])
    con = blocks(sections()["Connecting"])
    assert len(acc) == 2 and len(con) == 4, "README blocks changed: update this test"
    setup, later = acc
    subpub, tls, bundled, device = con

    root = harness.make_datadir()
    run = None
    sh = None
    try:
        data = os.path.join(root, "var")
        port, tls_port = harness.free_port(), harness.free_port()
        run = rs.Run(data, port, extra_env={"TLS_PORT": str(tls_port)}).wait_running()
        # The reader's working copy: build/ of this tree, nothing else.
        cwd = os.path.join(root, "checkout")
        os.mkdir(cwd)
        os.symlink(harness.BUILD, os.path.join(cwd, "build"))
        env = dict(os.environ, DATA=data, PORT=str(port), TLS_PORT=str(tls_port))
        env.pop("MQCHAT_PASSWORD", None)
        sh = Shell(cwd, env, assigned(setup + later + subpub + tls + bundled + device))

        # Accounts and a room.
        for cmd in setup:
            sh.ok(cmd)
        users = sh.ok('build/mqchat-archiver --data "$DATA" user list').stdout
        assert all(u in users for u in ("alice", "bob", "sensor1")), users

        # alice listens in the background, bob writes to her.
        assert subpub[0].rstrip().endswith("&")
        sub = sh.start(subpub[0], "alice-sub.out")
        until_ok(sh, subpub[1], done=lambda: "hi alice" in read(sub))
        assert 'chat/inbox/alice/bob {"id":"m-0001","type":"text","body":"hi alice"}' in read(sub)

        # Over TLS, checked with make run's CA.
        for cmd in tls[:-1]:
            sh.ok(cmd)
        until_ok(sh, tls[-1], done=lambda: "over TLS" in read(sub))

        # The bundled client; its chat reads the terminal: one line, then EOF.
        for cmd in bundled[:-1]:
            p = until_ok(sh, cmd)
            if " history " in cmd:
                assert "hi alice" in p.stdout and "over TLS" in p.stdout, p.stdout
            if cmd.endswith(" rooms"):
                assert "lab" in p.stdout, p.stdout
        assert " chat bob" in bundled[-1]
        sh.ok(bundled[-1], stdin="typed in chat\n")

        # The device's reading reaches the room's archive.
        until_ok(sh, device[0], done=lambda: "21.4 C" in sh.run(
            'build/mqchat --port "$PORT" --user alice history --room lab').stdout)

        # Later: bob disabled (his next login refused), an invite made.
        assert "user disable bob" in later[0]
        sh.ok(later[0])
        assert "invite create" in later[1]
        assert sh.ok(later[1]).stdout.strip()
        harness.wait_for(lambda: sh.run(subpub[1]).returncode != 0, what="bob refused once disabled")
    finally:
        if sh:
            sh.stop()
        if run:
            run.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_readme_gives_the_web_app_address_run_sh_serves():
    # The address make run prints for the web app (scripts/run.sh's
    # HTTP_PORT default) is the one the README names.
    with open(rs.RUN) as f:
        port = re.search(r"^HTTP_PORT=\$\{HTTP_PORT:-(\d+)\}$", f.read(), flags=re.M).group(1)
    s = sections()
    addr = "http://127.0.0.1:%s/" % port
    assert addr in s["Two commands"] and addr in s["The web app"]
    with open(rs.RUN) as f:
        assert "Web app: http://127.0.0.1:$HTTP_PORT/" in f.read()
    # Production: TLS in front, wss:// to the broker, and the policy to keep.
    web = s["The web app"]
    for words in ("wss://", "Content-Security-Policy: default-src 'self'", "gzip_static",
                  "### Screenshots"):
        assert words in web, words
