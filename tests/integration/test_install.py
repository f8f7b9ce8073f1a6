"""test_install.py - `make install` and what it installs, without touching
the machine: everything goes into a temp DESTDIR.

- The layout and modes (docs/INSTALL.md, the brief's "Installed layout"),
  with PREFIX=/usr as the package has it and with the default /usr/local,
  whose units and configs must name /usr/local paths; `make uninstall`
  leaves none of our files, and keeps a config the operator changed.
- The units pass `systemd-analyze verify` (a copy whose programs are
  mapped into DESTDIR, with Debian's own mosquitto.service beside our
  drop-in, so the drop-in is read as systemd would read it).
- The man pages render without a warning and name every command and
  option of the programs' --help.
- The production configs keep the facts they share with config/*.conf.
- The units' ExecStartPre/ExecStart lines, read from the installed unit
  files, run for real against the DESTDIR install (paths mapped into it,
  ports moved to free loopback ones): init makes the data folder, the
  broker starts from the production mosquitto.conf, the archiver from the
  production archiver.conf, and the installed client talks to both.
  tests/package/test_deb.py does the same with the real .deb, as root.
"""
import configparser
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import urllib.request

import pytest

import harness

ROOT = harness.ROOT
BUILD = os.environ.get("BUILD", "build")
PACKAGING = os.path.join(ROOT, "packaging")
MAN1 = os.path.join(ROOT, "docs", "man", "mqchat.1")
MAN8 = os.path.join(ROOT, "docs", "man", "mqchat-archiver.8")
DEBIAN_LAYOUT = ["PREFIX=/usr", "SYSTEMDUNITDIR=/lib/systemd/system"]


def make(target, destdir, *args):
    r = subprocess.run(["make", "-s", "--no-print-directory", "-C", ROOT, target,
                        "BUILD=" + BUILD, "DESTDIR=" + destdir] + list(args),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "make %s failed:\n%s%s" % (target, r.stdout, r.stderr)
    return r.stdout


def files_under(root):
    """{path relative to root: mode} of every file (not folder) under root."""
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            out["/" + os.path.relpath(p, root)] = os.lstat(p).st_mode & 0o7777
    return out


@pytest.fixture(scope="module")
def destdir():
    d = tempfile.mkdtemp(prefix="mqchat-install-")
    make("install", d, *DEBIAN_LAYOUT)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# What `make install PREFIX=/usr` puts where, and with which mode; the web
# app's files are checked apart (whatever make web built).
EXPECTED = {
    "/usr/bin/mqchat": 0o755,
    "/usr/bin/mqchat-archiver": 0o755,
    "/usr/lib/mqchat/mqchat_auth.so": 0o644,
    "/usr/lib/mqchat/mqchat_store_pg.so": 0o644,
    "/usr/share/man/man1/mqchat.1": 0o644,
    "/usr/share/man/man8/mqchat-archiver.8": 0o644,
    "/etc/mqchat/archiver.conf": 0o644,
    "/etc/mqchat/mosquitto.conf": 0o644,
    "/lib/systemd/system/mqchat-archiver.service": 0o644,
    "/lib/systemd/system/mqchat-bus.service": 0o644,
    "/lib/systemd/system/mosquitto.service.d/mqchat.conf": 0o644,
    "/etc/logrotate.d/mqchat": 0o644,
}


def test_layout_and_modes(destdir):
    got = files_under(destdir)
    web = {p: m for p, m in got.items() if p.startswith("/usr/share/mqchat/web/")}
    rest = {p: m for p, m in got.items() if p not in web}
    assert rest == EXPECTED
    built = files_under(os.path.join(ROOT, BUILD, "web"))
    assert "/index.html" in built
    assert set(web) == {"/usr/share/mqchat/web" + p for p in built}
    assert set(web.values()) == {0o644}
    # The programs are the build's, byte for byte (nothing rebuilt).
    for src, dst in (("mqchat-archiver", "/usr/bin/mqchat-archiver"),
                     ("mqchat_auth.so", "/usr/lib/mqchat/mqchat_auth.so"),
                     ("mqchat_store_pg.so", "/usr/lib/mqchat/mqchat_store_pg.so")):
        with open(os.path.join(ROOT, BUILD, src), "rb") as a, open(destdir + dst, "rb") as b:
            assert a.read() == b.read(), dst
    # No data folder: init makes it (the unit runs it), never make.
    assert not os.path.exists(os.path.join(destdir, "var"))


def test_other_prefix_and_uninstall():
    """PREFIX=/usr/local: the units and configs name /usr/local paths.
    make uninstall removes every file of ours; a config the operator
    changed is kept (and a second install keeps it too)."""
    d = tempfile.mkdtemp(prefix="mqchat-install-")
    try:
        make("install", d)
        unit = os.path.join(d, "usr/local/lib/systemd/system/mqchat-archiver.service")
        text = open(unit).read()
        assert "ExecStart=/usr/local/bin/mqchat-archiver --data /var/lib/mqchat run" in text
        assert "/usr/bin/mqchat" not in text
        conf = open(os.path.join(d, "etc/mqchat/mosquitto.conf")).read()
        assert "\nplugin /usr/local/lib/mqchat/mqchat_auth.so\n" in conf
        for path in re.findall(r"^(?:ExecStartPre|ExecStart)=(\S+)", text, re.M):
            assert os.access(d + path, os.X_OK), path

        make("uninstall", d)
        assert files_under(d) == {}
        left = [os.path.join(a, n) for a, ds, _ in os.walk(d) for n in ds if "mqchat" in n]
        assert left == []

        make("install", d)
        aconf = os.path.join(d, "etc/mqchat/archiver.conf")
        with open(aconf, "a") as f:
            f.write("retention_days = 90\n")
        out = make("install", d)
        assert "kept %s" % aconf in out
        assert open(aconf).read().endswith("retention_days = 90\n")
        out = make("uninstall", d)
        assert "kept %s (changed since it was installed)" % aconf in out
        assert list(files_under(d)) == ["/etc/mqchat/archiver.conf"]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_install_refuses_without_a_build():
    d = tempfile.mkdtemp(prefix="mqchat-install-")
    try:
        r = subprocess.run(["make", "-s", "--no-print-directory", "-C", ROOT, "install",
                            "BUILD=build-does-not-exist", "DESTDIR=" + d],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0
        assert "build-does-not-exist/mqchat_auth.so is not built: run make BUILD=build-does-not-exist first" in r.stderr
        assert files_under(d) == {}
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- systemd ----

def unit_copy(destdir, tmp):
    """The installed units in tmp, the programs of ours mapped into
    destdir, Debian's mosquitto.service beside our drop-in (so systemd
    reads the drop-in on the unit it belongs to)."""
    units = os.path.join(tmp, "units")
    os.makedirs(os.path.join(units, "mosquitto.service.d"))
    for rel in ("mqchat-archiver.service", "mqchat-bus.service", "mosquitto.service.d/mqchat.conf"):
        with open(os.path.join(destdir, "lib/systemd/system", rel)) as f:
            text = f.read().replace("/usr/bin/mqchat", destdir + "/usr/bin/mqchat")
        with open(os.path.join(units, rel), "w") as f:
            f.write(text)
    return units


def test_systemd_analyze_verify(destdir, tmp_path):
    tool = shutil.which("systemd-analyze")
    if not tool:
        pytest.skip("systemd-analyze is not installed (Debian: systemd)")
    debian_unit = "/lib/systemd/system/mosquitto.service"
    if not os.path.exists(debian_unit):
        pytest.skip("no %s (Debian's mosquitto package) to check the drop-in on" % debian_unit)
    units = unit_copy(destdir, str(tmp_path))
    shutil.copy(debian_unit, units)
    env = dict(os.environ, SYSTEMD_UNIT_PATH=units + ":", SYSTEMD_LOG_COLOR="0")
    for unit in ("mqchat-archiver.service", "mqchat-bus.service", "mosquitto.service"):
        r = subprocess.run([tool, "verify", "--man=no", os.path.join(units, unit)],
                           capture_output=True, text=True, env=env, timeout=60)
        # Unknown keys are only warned about (status 0): any word is a failure.
        assert r.returncode == 0 and r.stdout + r.stderr == "", "%s:\n%s%s" % (unit, r.stdout, r.stderr)
    # The check is real: a wrong key in the drop-in is seen.
    with open(os.path.join(units, "mosquitto.service.d", "mqchat.conf"), "a") as f:
        f.write("ProtectSistem=strict\n")
    r = subprocess.run([tool, "verify", "--man=no", os.path.join(units, "mosquitto.service")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert "Unknown key 'ProtectSistem'" in r.stderr


def test_units_exposure(destdir, tmp_path):
    """systemd-analyze security --offline scores the sandbox (0 best, 10
    worst): measured 1.5 for the archiver and 2.7 for the broker with the
    drop-in (9.6 for Debian's unit alone). A lost option raises it."""
    tool = shutil.which("systemd-analyze")
    debian_unit = "/lib/systemd/system/mosquitto.service"
    if not tool or not os.path.exists(debian_unit):
        pytest.skip("needs systemd-analyze and Debian's mosquitto.service")
    units = unit_copy(destdir, str(tmp_path))
    shutil.copy(debian_unit, units)
    env = dict(os.environ, SYSTEMD_UNIT_PATH=units + ":", SYSTEMD_LOG_COLOR="0")
    for unit, bound in (("mqchat-archiver.service", 2.0), ("mqchat-bus.service", 2.0),
                        ("mosquitto.service", 3.5)):
        r = subprocess.run([tool, "security", "--offline=true", "--no-pager", os.path.join(units, unit)],
                           capture_output=True, text=True, env=env, timeout=60)
        if "--offline" in r.stderr and "unrecognized" in r.stderr:
            pytest.skip("systemd-analyze security has no --offline here")
        m = re.search(r"Overall exposure level for %s: ([0-9.]+)" % re.escape(unit), r.stdout)
        assert m, r.stdout[-2000:] + r.stderr
        assert float(m.group(1)) <= bound, "%s: exposure %s > %s\n%s" % (unit, m.group(1), bound, r.stdout)


def test_units_hardening():
    """The archiver's unit has the hardening the brief lists; the drop-in
    resets Debian's ExecStart before giving its own."""
    u = parse_unit(os.path.join(PACKAGING, "systemd", "mqchat-archiver.service"))
    s = u["Service"]
    for key, value in (("User", "mosquitto"), ("NoNewPrivileges", "yes"),
                       ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                       ("PrivateTmp", "yes"), ("PrivateDevices", "yes"),
                       ("ProtectKernelTunables", "yes"), ("ProtectKernelModules", "yes"),
                       ("RestrictNamespaces", "yes"), ("LockPersonality", "yes"),
                       ("MemoryDenyWriteExecute", "yes"), ("SystemCallArchitectures", "native"),
                       ("CapabilityBoundingSet", ""), ("ReadWritePaths", "/var/lib/mqchat"),
                       ("Restart", "on-failure")):
        assert s[key] == [value], key
    assert s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert "mosquitto.service" in u["Unit"]["After"][0] and u["Unit"]["Wants"] == ["mosquitto.service"]
    d = parse_unit(os.path.join(PACKAGING, "systemd", "mosquitto-mqchat.conf"))["Service"]
    assert d["ExecStart"] == ["", "/usr/sbin/mosquitto -c /etc/mqchat/mosquitto.conf"]
    assert d["NoNewPrivileges"] == ["yes"] and d["ProtectSystem"] == ["strict"]


def parse_unit(path):
    """{section: {key: [values in order]}} of a unit file."""
    out = {}
    section = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = out.setdefault(line.strip("[]"), {})
                continue
            k, _, v = line.partition("=")
            section.setdefault(k.strip(), []).append(v.strip())
    return out


# ---- man pages ----

@pytest.mark.parametrize("page", [MAN1, MAN8], ids=["mqchat.1", "mqchat-archiver.8"])
def test_man_page_renders_without_warnings(page):
    if not shutil.which("groff"):
        pytest.skip("groff is not installed (Debian: groff-base)")
    r = subprocess.run(["groff", "-ww", "-z", "-man", page], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    if shutil.which("man"):
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_DISABLE_SECCOMP="1")
        r = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                           env=env, timeout=60)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        assert "EXIT STATUS" in r.stdout and "EXAMPLES" in r.stdout


def man_text(page):
    """The page's source as plain words: font escapes gone, \\- as -."""
    with open(page) as f:
        text = f.read()
    text = re.sub(r"\\f[BIRP]", "", text).replace("\\-", "-").replace("\\e", "\\")
    return re.sub(r"^\.[A-Z]+ ?", "", text, flags=re.M).replace('"', "")


def help_of(program, *args):
    r = subprocess.run([program] + list(args) + ["--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def command_and_options(line, program):
    """From a usage line ("mqchat room create ROOM [--title T]"), the
    command's words ("room create") and its options (["--title"])."""
    words = line.split()
    if words and words[0] == "usage:":
        words = words[1:]
    if words and words[0] == program:
        words = words[1:]
    while words and words[0].startswith("[--"):     # global options of a usage line
        words = words[2:] if not words[0].endswith("]") else words[1:]
    cmd = []
    for w in words:
        if not re.fullmatch(r"[a-z][a-z-]*", w):
            break
        cmd.append(w)
    return " ".join(cmd), re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", line)


def check_documented(text, lines, program):
    missing = []
    for line in lines:
        cmd, opts = command_and_options(line, program)
        if cmd and not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(cmd), text):
            missing.append("command %r" % cmd)
        for o in opts:
            if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), text):
                missing.append("option %s (of %r)" % (o, line.strip()))
    return missing


def test_man_pages_cover_every_command_and_option():
    client = os.path.join(ROOT, BUILD, "mqchat")
    archiver = os.path.join(ROOT, BUILD, "mqchat-archiver")
    # mqchat: the global options and every command line of --help; each
    # command's own --help (its usage lines) too.
    top = help_of(client)
    lines = [l for l in top.splitlines() if l.startswith(("  ", "usage:", "              ["))]
    cmds = sorted({command_and_options(l, "mqchat")[0].split()[0] for l in lines
                   if l.startswith("  ") and command_and_options(l, "mqchat")[0]})
    assert len(cmds) > 20, cmds
    for c in cmds:
        lines += help_of(client, c).splitlines()
    missing = check_documented(man_text(MAN1), lines, "mqchat")
    assert missing == [], "mqchat.1 does not document: %s" % missing

    # mqchat-archiver: the commands of --help, each group's --help, each
    # command's --help, run --help.
    top = help_of(archiver)
    lines = [l for l in top.splitlines() if l.startswith("  ") and re.match(r"  [a-z-]", l)
             and not l.startswith("      ")]
    lines += [l for l in top.splitlines() if l.strip().startswith("--")]
    groups = {}
    for l in lines:
        words = l.split()
        if words and re.fullmatch(r"[a-z][a-z-]*", words[0]) and len(words) > 1 and "|" in words[1]:
            groups[words[0]] = words[1].split("|")
    single = [l.split()[0] for l in lines if l.startswith("  ") and l.split()[0] not in groups
              and re.fullmatch(r"[a-z][a-z-]*", l.split()[0])]
    assert {"run", "init", "user", "room"} <= set(single) | set(groups), (single, groups)
    for g, subs in groups.items():
        glines = help_of(archiver, g).splitlines()
        lines += [l for l in glines if l.startswith("  %s " % g)]
        for s in subs:
            lines += [l for l in help_of(archiver, g, s).splitlines() if l.startswith("usage:")]
    for c in single:
        lines += [l for l in help_of(archiver, c).splitlines() if l.startswith(("usage:", "    ["))]
    text = man_text(MAN8)
    # The group lines ("user add|passwd|...") name their commands one by one.
    expanded = []
    for l in lines:
        words = l.split()
        if words and words[0] in groups and len(words) > 1 and "|" in words[1]:
            expanded += ["%s %s" % (words[0], s) for s in words[1].split("|")]
        else:
            expanded.append(l)
    missing = check_documented(text, expanded, "mqchat-archiver")
    assert missing == [], "mqchat-archiver.8 does not document: %s" % missing


def test_man_page_check_is_real():
    """The coverage check finds what a page leaves out."""
    assert check_documented("send --lines", ["  send USER [--lines] [--json]"], "mqchat") == [
        "option --json (of 'send USER [--lines] [--json]')"]
    assert check_documented("room add", ["  room create ROOM"], "mqchat") == ["command 'room create'"]


# ---- the production configs ----

def conf_lines(path):
    """Active lines of a config: [(key, value)]."""
    out = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                if "=" in line and not line.startswith(("listener", "plugin")):
                    k, _, v = line.partition("=")
                else:
                    k, _, v = line.partition(" ")
                out.append((k.strip(), v.strip()))
    return out


def test_production_configs_keep_the_shared_facts():
    prod_b = dict(conf_lines(os.path.join(PACKAGING, "mosquitto.conf")))
    dev_b = dict(conf_lines(os.path.join(ROOT, "config", "mosquitto.conf")))
    # Every limit is the same as in the make run config.
    for k in ("per_listener_settings", "allow_anonymous", "max_connections", "set_tcp_nodelay",
              "max_keepalive", "persistent_client_expiration", "max_queued_messages",
              "max_queued_bytes", "max_inflight_messages", "upgrade_outgoing_qos",
              "max_packet_size", "persistence", "autosave_interval", "connection_messages"):
        assert prod_b[k] == dev_b[k], k
    for k in ("sys_interval", "plugin_opt_stats_interval"):
        assert prod_b[k] == dev_b[k], k
    assert prod_b["plugin"] == "/usr/lib/mqchat/mqchat_auth.so"
    assert prod_b["plugin_opt_dbpath"] == "/var/lib/mqchat/auth.db"
    assert prod_b["persistence_location"] == "/var/lib/mqchat/mosquitto/"
    assert prod_b["plugin_opt_registration"] == "off"
    assert prod_b["log_dest"] == "stderr"
    # One listener, loopback; TLS is there, commented, for the operator.
    listeners = [v for k, v in conf_lines(os.path.join(PACKAGING, "mosquitto.conf")) if k == "listener"]
    assert listeners == ["1883 127.0.0.1"]
    assert "\n#listener 8883\n" in open(os.path.join(PACKAGING, "mosquitto.conf")).read()

    prod_a = dict(conf_lines(os.path.join(PACKAGING, "archiver.conf")))
    dev_a = dict(conf_lines(os.path.join(ROOT, "config", "archiver.conf")))
    for k in ("host", "port", "user", "connections", "retention_days", "expiry_interval"):
        assert prod_a[k] == dev_a[k], k
    assert prod_a["registration"] == "off"
    assert (prod_a["metrics_port"], prod_a["metrics_bind"]) == ("9464", "127.0.0.1")
    assert "log" not in prod_a          # stderr: the journal
    # The broker keeps an absent client's queue as long as the archive keeps messages.
    assert prod_b["persistent_client_expiration"] == prod_a["retention_days"] + "d"
    assert prod_a["port"] == listeners[0].split()[0]


# ---- the units' command lines, run against the DESTDIR install ----

def exec_lines(unit_path, key):
    return [v for v in parse_unit(unit_path)["Service"].get(key, []) if v]


def free_loopback_port():
    return harness.free_port()


class Installed:
    """The DESTDIR install, run as its units would run it, with every path
    of ours mapped into DESTDIR and the ports moved to free ones."""

    def __init__(self, destdir, tmp):
        self.d = destdir
        self.tmp = tmp
        self.port = free_loopback_port()
        self.metrics_port = free_loopback_port()
        self.data = destdir + "/var/lib/mqchat"
        # The package's /var/lib is there; the data folder is not (init makes it).
        os.makedirs(destdir + "/var/lib", exist_ok=True)
        self.procs = []

    def map(self, text):
        for p in ("/usr/bin/mqchat", "/usr/lib/mqchat/", "/etc/mqchat/", "/var/lib/mqchat"):
            text = text.replace(p, self.d + p)
        return text

    def argv(self, line):
        """A unit's command line as argv, mapped. The `setpriv ... --`
        prefix (run as the `mosquitto` user) is tests/package's to run:
        here everything runs as the test's user."""
        words = shlex.split(self.map(line))
        if os.path.basename(words[0]) == "setpriv":
            words = words[words.index("--") + 1:]
        return words

    def rewrite_configs(self):
        b = self.d + "/etc/mqchat/mosquitto.conf"
        text = self.map(open(b).read())
        # Every path the broker opens is one of the layout's, now in DESTDIR.
        active = [l for l in text.splitlines() if l and not l.startswith("#")]
        for l in active:
            for w in l.split()[1:]:
                if w.startswith("/"):
                    assert w.startswith(self.d + "/"), "unmapped path in mosquitto.conf: %s" % l
        text = text.replace("\nlistener 1883 127.0.0.1\n", "\nlistener %d 127.0.0.1\n" % self.port)
        if os.geteuid() == 0:
            # Started as root, mosquitto would become `mosquitto`, which
            # cannot enter this root-owned temp folder (tests/package runs
            # the real thing).
            text += "\nuser root\n"
        open(b, "w").write(text)
        a = self.d + "/etc/mqchat/archiver.conf"
        text = open(a).read()
        assert "\nport = 1883\n" in text and "\nmetrics_port = 9464\n" in text
        text = text.replace("\nport = 1883\n", "\nport = %d\n" % self.port)
        text = text.replace("\nmetrics_port = 9464\n", "\nmetrics_port = %d\n" % self.metrics_port)
        open(a, "w").write(text)

    def run(self, argv, **kw):
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)

    def start(self, argv, name, env=None):
        p = harness.Proc(argv, os.path.join(self.tmp, name + ".log"), env=env)
        self.procs.append(p)
        return p

    def stop_all(self):
        rcs = [p.stop() for p in reversed(self.procs)]
        self.procs = []
        return rcs


def test_units_exec_lines_run_against_the_install(destdir, tmp_path):
    tmp = str(tmp_path)
    inst = Installed(destdir, tmp)
    units = destdir + "/lib/systemd/system"
    a_unit = units + "/mqchat-archiver.service"
    b_unit = units + "/mosquitto.service.d/mqchat.conf"
    a_pre = exec_lines(a_unit, "ExecStartPre")
    a_start = exec_lines(a_unit, "ExecStart")
    b_pre = exec_lines(b_unit, "ExecStartPre")
    b_start = exec_lines(b_unit, "ExecStart")
    assert a_pre == ["/usr/bin/mqchat-archiver --data /var/lib/mqchat init"]
    assert a_start == ["/usr/bin/mqchat-archiver --data /var/lib/mqchat run -c /etc/mqchat/archiver.conf"]
    assert len(b_pre) == 1 and len(b_start) == 1
    inst.rewrite_configs()
    env = dict(os.environ, HOME=tmp, XDG_CONFIG_HOME=tmp + "/config", XDG_STATE_HOME=tmp + "/state")
    try:
        # The archiver's ExecStartPre: init makes the data folder (twice: idempotent).
        for _ in range(2):
            r = inst.run(inst.argv(a_pre[0]))
            assert r.returncode == 0, r.stderr
        assert "already initialised" in r.stdout
        assert os.stat(inst.data).st_mode & 0o777 == 0o750
        for f in ("auth.db", "archive.db", "archiver.pw"):
            assert os.path.exists(os.path.join(inst.data, f)), f
        # The broker's ExecStartPre (its persistence folder) and ExecStart.
        r = inst.run(inst.argv(b_pre[0]))
        assert r.returncode == 0, r.stderr
        assert os.path.isdir(inst.data + "/mosquitto")
        benv = {}
        if harness.SAN:
            benv["LD_PRELOAD"] = harness.asan_runtime(destdir + "/usr/lib/mqchat/mqchat_auth.so")
        broker = inst.start(inst.argv(b_start[0]), "mosquitto", env=benv)

        def listening():
            if broker.proc.poll() is not None:
                raise AssertionError("the broker exited:\n" + broker.output())
            try:
                socket.create_connection(("127.0.0.1", inst.port), timeout=0.5).close()
                return True
            except OSError:
                return False
        harness.wait_for(listening, 20, what="the broker on port %d" % inst.port)
        archiver = inst.start(inst.argv(a_start[0]), "archiver")
        harness.wait_for(lambda: "archiver@0: subscribed" in archiver.output()
                         or archiver.proc.poll() is not None, 20, what="the archiver's subscription")
        assert archiver.proc.poll() is None, archiver.output()

        # A user made with the installed CLI logs in with the installed client.
        cli = destdir + "/usr/bin/mqchat-archiver"
        r = inst.run([cli, "--data", inst.data, "user", "add", "alice", "--password-stdin"],
                     input="correct horse battery\n")
        assert r.returncode == 0, r.stderr
        pw = os.path.join(tmp, "pw")
        with open(pw, "w") as f:
            f.write("correct horse battery\n")
        os.chmod(pw, 0o600)
        client = [destdir + "/usr/bin/mqchat", "--host", "127.0.0.1", "--port", str(inst.port),
                  "--user", "alice", "--device", "t", "--password-file", pw]
        r = inst.run(client + ["send", "alice", "installed and running"], env=env)
        assert r.returncode == 0, r.stderr + broker.output()[-2000:]
        # history is answered by the archiver: it stored the message.
        r = inst.run(client + ["history", "alice"], env=env)
        assert r.returncode == 0 and "installed and running" in r.stdout, r.stderr

        # Metrics and health on the configured port (loopback).
        def health():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/health" % inst.metrics_port,
                                            timeout=2) as resp:
                    return resp.status == 200 and resp.read()
            except OSError:
                return False
        harness.wait_for(health, 20, what="/health answering 200")
        # All three parts, as the production configs wire them: the
        # archiver's own, the plugin's (plugin_opt_stats_interval, on
        # $SYS/mqchat/plugin) and the broker's (sys_interval, $SYS/broker).
        def metrics():
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % inst.metrics_port,
                                        timeout=5) as resp:
                text = resp.read().decode()
            return ("mqchat_archiver_" in text and "\nmqchat_plugin_up 1\n" in text
                    and "\nmosquitto_uptime_seconds " in text) and text
        harness.wait_for(metrics, 30, interval=0.5, what="/metrics with the archiver's, the plugin's "
                         "and the broker's figures")

        # SIGTERM, as systemctl stop sends it: both leave with status 0.
        assert inst.stop_all() == [0, 0]
    finally:
        for p in inst.procs:
            print("---- %s ----\n%s" % (p.proc.args[0], p.output()[-3000:]))
        inst.stop_all()
