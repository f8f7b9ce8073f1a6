"""test_deb.py - the Debian package on this machine: install, run, purge
(`make test-package`, root only; it changes the machine and undoes it).

`dpkg -i` of the .deb `make deb` built ($DEB), then:
- its files, owners and modes, its conffiles, and a Depends that names the
  package of every library the programs link;
- postinst made /var/lib/mqchat for the `mosquitto` user, with `init` done,
  and enabled mqchat-archiver.service;
- the installed units' exact ExecStartPre/ExecStart lines (Debian's
  mosquitto.service with our drop-in, and mqchat-archiver.service, read
  from the installed files, as systemd merges them) run as their User,
  with their UMask, inside a private network namespace (so the real port
  1883 and 9464 cannot clash with anything on this machine); the
  installed `mqchat` sends and reads back a message as a user made with
  the installed CLI, /health and /metrics answer on 9464; both stop on
  SIGTERM, by PID, with status 0;
- the installed CLI on a store in PostgreSQL (the module
  /usr/lib/mqchat/mqchat_store_pg.so, loaded with dlopen), when
  PostgreSQL 15 is installed;
- `dpkg --purge mqchat` leaves nothing of ours: files, /etc/mqchat,
  /var/lib/mqchat, the units and their enablement.
The package is purged in a finally, whatever happened.

Skipped (with the reason) when not root, without dpkg or unshare, when a
mqchat package this test did not install is present, or when
/etc/mqchat or /var/lib/mqchat exist already (a purge would delete them).
"""
import glob
import os
import pwd
import shlex
import signal
import stat
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import wait_for  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
UNITS = "/lib/systemd/system"
ARCHIVER_UNIT = UNITS + "/mqchat-archiver.service"
BROKER_UNIT = UNITS + "/mosquitto.service"
DROPIN = UNITS + "/mosquitto.service.d/mqchat.conf"
OURS = ("/etc/mqchat", "/var/lib/mqchat", "/var/log/mqchat", ARCHIVER_UNIT, DROPIN,
        "/usr/lib/mqchat", "/usr/share/mqchat", "/etc/logrotate.d/mqchat",
        "/usr/bin/mqchat", "/usr/bin/mqchat-archiver")
ENABLED = ("/etc/systemd/system/multi-user.target.wants/mqchat-archiver.service",
           "/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/mqchat-archiver.service",
           "/var/lib/systemd/deb-systemd-helper-enabled/mqchat-archiver.service.dsh-also")
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
PASSWORD = "correct horse battery"


def run(argv, **kw):
    kw.setdefault("timeout", 120)
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def package_status():
    r = run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", "mqchat"])
    return r.stdout.strip() if r.returncode == 0 else ""


def the_deb():
    deb = os.environ.get("DEB")
    if not deb:
        debs = sorted(glob.glob(os.path.join(ROOT, BUILD, "mqchat_*.deb")), key=os.path.getmtime)
        deb = debs[-1] if debs else None
    if not deb or not os.path.exists(deb):
        pytest.skip("no package: run make deb (or make test-package)")
    return deb


def why_not():
    """Why this machine cannot run the test, or None."""
    if os.geteuid() != 0:
        return "needs root (it installs and purges a package)"
    for tool in ("dpkg", "dpkg-query", "unshare", "nsenter", "setpriv", "ip"):
        if run(["sh", "-c", "command -v " + tool]).returncode != 0:
            return "%s is not installed" % tool
    if package_status() not in ("", "un", "pn"):
        return "a mqchat package this test did not install is there (%s): left alone" % package_status()
    for p in ("/etc/mqchat", "/var/lib/mqchat"):
        if os.path.lexists(p):
            return "%s exists already: purging the package would delete it" % p
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        if not os.path.exists("/usr/sbin/mosquitto"):
            return "mosquitto is not installed (the package depends on it)"
    return None


@pytest.fixture(scope="module")
def installed():
    reason = why_not()
    if reason:
        pytest.skip(reason)
    deb = the_deb()
    try:
        r = run(["dpkg", "-i", deb])
        assert r.returncode == 0, r.stdout + r.stderr
        assert package_status() == "ii"
        listed = run(["dpkg", "-L", "mqchat"]).stdout.split()
        yield {"deb": deb, "files": listed}
    finally:
        if package_status() not in ("", "un", "pn"):
            r = run(["dpkg", "--purge", "mqchat"])
            print(r.stdout + r.stderr)


def owner(path):
    st = os.lstat(path)
    return pwd.getpwuid(st.st_uid).pw_name, stat.S_IMODE(st.st_mode)


def test_files_owners_and_modes(installed):
    files = installed["files"]
    expected = {
        "/usr/bin/mqchat": 0o755,
        "/usr/bin/mqchat-archiver": 0o755,
        "/usr/lib/mqchat/mqchat_auth.so": 0o644,
        "/usr/lib/mqchat/mqchat_store_pg.so": 0o644,
        "/usr/share/man/man1/mqchat.1.gz": 0o644,
        "/usr/share/man/man8/mqchat-archiver.8.gz": 0o644,
        "/etc/mqchat/archiver.conf": 0o644,
        "/etc/mqchat/mosquitto.conf": 0o644,
        ARCHIVER_UNIT: 0o644,
        DROPIN: 0o644,
        "/etc/logrotate.d/mqchat": 0o644,
        "/usr/share/mqchat/web/index.html": 0o644,
    }
    for path, mode in expected.items():
        assert path in files, path
        assert owner(path) == ("root", mode), path
    for path in files:
        if os.path.isfile(path):
            assert owner(path)[0] == "root" and owner(path)[1] in (0o644, 0o755), path
    # The configs and the logrotate rule are conffiles: an upgrade keeps an
    # operator's change.
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "mqchat"]).stdout.split()
    assert {"/etc/mqchat/archiver.conf", "/etc/mqchat/mosquitto.conf",
            "/etc/logrotate.d/mqchat"} <= set(conffiles)
    # The man pages are there for man(1).
    r = run(["man", "-w", "mqchat-archiver"])
    assert r.stdout.strip() == "/usr/share/man/man8/mqchat-archiver.8.gz", r.stderr


def test_depends_names_every_library(installed):
    """Depends (from dpkg-shlibdeps) holds the package of each library the
    installed programs link, and the broker."""
    depends = run(["dpkg-query", "-W", "-f=${Depends}", "mqchat"]).stdout
    names = {d.strip().split()[0] for d in depends.split(",")}
    assert "mosquitto" in names
    for prog in ("/usr/bin/mqchat", "/usr/bin/mqchat-archiver", "/usr/lib/mqchat/mqchat_auth.so",
                 "/usr/lib/mqchat/mqchat_store_pg.so"):
        needed = [l.split()[-1].strip("[]") for l in run(["objdump", "-p", prog]).stdout.splitlines()
                  if l.split()[:1] == ["NEEDED"]]
        assert needed, prog
        paths = dict((l.split()[0], l.split()[2]) for l in run(["ldd", prog]).stdout.splitlines()
                     if " => /" in l)
        for lib in needed:
            r = run(["dpkg-query", "-S", os.path.realpath(paths[lib])])
            if r.returncode != 0:
                r = run(["dpkg-query", "-S", paths[lib]])
            pkg = r.stdout.split(":")[0]
            assert pkg in names, "%s needs %s from %s, not in Depends: %s" % (prog, lib, pkg, depends)


def test_postinst_made_the_data_folder(installed):
    assert owner("/var/lib/mqchat") == ("mosquitto", 0o750)
    for f, mode in (("auth.db", 0o640), ("archive.db", 0o640), ("archiver.pw", 0o600),
                    ("vapid.pem", 0o600)):
        assert owner("/var/lib/mqchat/" + f) == ("mosquitto", mode), f
    assert owner("/var/lib/mqchat/mosquitto") == ("mosquitto", 0o750)
    # init is done: a second one changes nothing.
    r = run(as_user("mosquitto") + ["/usr/bin/mqchat-archiver", "--data", "/var/lib/mqchat", "init"],
            env=ENV)
    assert r.returncode == 0 and "already initialised" in r.stdout, r.stdout + r.stderr
    # Enabled for the next boot (deb-systemd-helper, also without systemd running).
    assert os.path.islink(ENABLED[0])


def test_upgrade_keeps_configs_and_data(installed, tmp_path):
    """An upgrade (the same package with a higher version): prerm stops,
    the files are replaced, postinst runs init again (nothing to do); the
    operator's change to a conffile and the accounts stay."""
    conf = "/etc/mqchat/archiver.conf"
    with open(conf, "a") as f:
        f.write("# changed by the operator\n")
    r = run(as_user("mosquitto") + ["/usr/bin/mqchat-archiver", "--data", "/var/lib/mqchat", "user", "add",
                                    "before", "--password-stdin"], input=PASSWORD + "\n", env=ENV)
    assert r.returncode == 0, r.stderr
    old = run(["dpkg-query", "-W", "-f=${Version}", "mqchat"]).stdout
    unpacked = str(tmp_path / "pkg")
    r = run(["dpkg-deb", "-R", installed["deb"], unpacked])
    assert r.returncode == 0, r.stderr
    control = os.path.join(unpacked, "DEBIAN", "control")
    text = open(control).read()
    assert "\nVersion: %s\n" % old in text
    with open(control, "w") as f:
        f.write(text.replace("\nVersion: %s\n" % old, "\nVersion: %s+1\n" % old))
    newer = str(tmp_path / "newer.deb")
    r = run(["dpkg-deb", "--root-owner-group", "-b", unpacked, newer])
    assert r.returncode == 0, r.stderr
    r = run(["dpkg", "-i", "--force-confold", newer])
    assert r.returncode == 0, r.stdout + r.stderr
    assert run(["dpkg-query", "-W", "-f=${Version}", "mqchat"]).stdout == old + "+1"
    assert open(conf).read().endswith("# changed by the operator\n")
    r = run(as_user("mosquitto") + ["/usr/bin/mqchat-archiver", "--data", "/var/lib/mqchat", "user", "show",
                                    "before"], env=ENV)
    assert r.returncode == 0 and "before" in r.stdout, r.stderr
    assert owner("/var/lib/mqchat") == ("mosquitto", 0o750)


def proc_user(pid):
    """The user a process runs as (its real uid: /proc/PID itself stays
    root's once a process has changed its own user)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return pwd.getpwuid(int(line.split()[1])).pw_name


def as_user(user):
    return ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups", "--"]


def unit_settings(path, dropins=()):
    """{key: [values]} of a unit's [Service] with its drop-ins merged as
    systemd merges them: an empty value empties the list."""
    out = {}
    for p in (path,) + tuple(dropins):
        section = None
        with open(p) as f:
            for line in f:
                line = line.strip()
                if not line or line[0] in "#;":
                    continue
                if line.startswith("["):
                    section = line.strip("[]")
                    continue
                if section != "Service":
                    continue
                k, _, v = line.partition("=")
                k, v = k.strip(), v.strip()
                if v == "":
                    out[k] = []
                else:
                    out.setdefault(k, []).append(v)
    return out


class Netns:
    """A private network namespace, held by a sleeping process, with its
    loopback up. run()/start() put a command into it (nsenter execs the
    command itself: the PID is the program's)."""

    def __init__(self):
        self.holder = subprocess.Popen(["unshare", "-n", "sleep", "600"])
        path = "/proc/%d/ns/net" % self.holder.pid
        wait_for(lambda: os.readlink(path) != os.readlink("/proc/self/ns/net"), 10,
                 what="the network namespace")
        self.prefix = ["nsenter", "--net=" + path, "--"]
        r = run(self.prefix + ["ip", "link", "set", "lo", "up"])
        assert r.returncode == 0, r.stderr

    def run(self, argv, **kw):
        return run(self.prefix + argv, **kw)

    def start(self, argv, log, umask=None):
        def pre():
            if umask is not None:
                os.umask(umask)
        return subprocess.Popen(self.prefix + argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=ENV, preexec_fn=pre)

    def close(self):
        self.holder.kill()
        self.holder.wait()


def http_get(ns, url):
    """(status, body) of a GET inside the namespace, or (None, why)."""
    code = ("import sys, urllib.request, urllib.error\n"
            "try:\n"
            "    r = urllib.request.urlopen(sys.argv[1], timeout=3); print(r.status); print(r.read().decode())\n"
            "except urllib.error.HTTPError as e:\n"
            "    print(e.code); print(e.read().decode())\n")
    r = ns.run(["python3", "-c", code, url], env=ENV)
    if r.returncode != 0:
        return None, r.stderr
    status, _, body = r.stdout.partition("\n")
    return int(status), body


def test_units_run_as_installed(installed, tmp_path):
    archiver = unit_settings(ARCHIVER_UNIT)
    broker = unit_settings(BROKER_UNIT, [DROPIN])
    assert broker["ExecStart"] == ["/usr/sbin/mosquitto -c /etc/mqchat/mosquitto.conf"]
    assert archiver["User"] == ["mosquitto"]
    a_user = as_user(archiver["User"][0])
    a_umask = int(archiver["UMask"][0], 8)
    tmp = str(tmp_path)
    os.chmod(tmp, 0o755)
    ns = Netns()
    procs = []
    logs = {}
    try:
        # The broker's unit (no User=: root, as systemd runs it; mosquitto
        # becomes `mosquitto` itself): Debian's ExecStartPre lines, ours, then ExecStart.
        for line in broker.get("ExecStartPre", []):
            r = ns.run(shlex.split(line), env=ENV)
            assert r.returncode == 0, "%s: %s" % (line, r.stderr)
        logs["broker"] = open(os.path.join(tmp, "broker.log"), "w+")
        b = ns.start(shlex.split(broker["ExecStart"][0]), logs["broker"])
        procs.append(b)
        wait_for(lambda: "running" in open(logs["broker"].name).read() or b.poll() is not None, 20,
                 what="the broker")
        assert b.poll() is None, open(logs["broker"].name).read()
        assert proc_user(b.pid) == "mosquitto"

        # The archiver's unit, as its User with its UMask.
        for line in archiver["ExecStartPre"]:
            r = ns.run(a_user + shlex.split(line), env=ENV)
            assert r.returncode == 0, "%s: %s" % (line, r.stderr)
        logs["archiver"] = open(os.path.join(tmp, "archiver.log"), "w+")
        a = ns.start(a_user + shlex.split(archiver["ExecStart"][0]), logs["archiver"], umask=a_umask)
        procs.append(a)
        wait_for(lambda: "archiver@0: subscribed" in open(logs["archiver"].name).read()
                 or a.poll() is not None, 20, what="the archiver's subscription")
        assert a.poll() is None, open(logs["archiver"].name).read()
        assert proc_user(a.pid) == "mosquitto"

        # A user made with the installed CLI (as the data folder's owner),
        # then the installed client, on the real port 1883 of the namespace.
        r = ns.run(a_user + ["/usr/bin/mqchat-archiver", "--data", "/var/lib/mqchat", "user", "add",
                             "alice", "--password-stdin"], input=PASSWORD + "\n", env=ENV)
        assert r.returncode == 0, r.stderr
        pw = os.path.join(tmp, "pw")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(pw, 0o600)
        cenv = dict(ENV, HOME=tmp, XDG_CONFIG_HOME=tmp + "/config", XDG_STATE_HOME=tmp + "/state")
        client = ["/usr/bin/mqchat", "--user", "alice", "--device", "pkg", "--password-file", pw]
        r = ns.run(client + ["send", "alice", "from the package"], env=cenv)
        assert r.returncode == 0, r.stderr
        r = ns.run(client + ["history", "alice"], env=cenv)
        assert r.returncode == 0 and "from the package" in r.stdout, r.stdout + r.stderr

        # Metrics and health on 127.0.0.1:9464, as the production config says.
        wait_for(lambda: http_get(ns, "http://127.0.0.1:9464/health")[0] == 200, 20,
                 what="/health answering 200")
        # The archiver's figures, the plugin's ($SYS/mqchat/plugin) and the
        # broker's ($SYS/broker): the production configs wire all three.
        def metrics():
            status, body = http_get(ns, "http://127.0.0.1:9464/metrics")
            return (status == 200 and "mqchat_archiver_" in body and "\nmqchat_plugin_up 1\n" in body
                    and "\nmosquitto_uptime_seconds " in body)
        wait_for(metrics, 30, interval=0.5, what="/metrics with all three parts")

        # The files the archiver made have its unit's UMask (no access for
        # others); auth.db-applied and mosquitto/ are the broker's
        # (docs/ARCHITECTURE.md, "Data folder": 0644 for the mark).
        made = [n for n in os.listdir("/var/lib/mqchat") if n not in ("auth.db-applied", "mosquitto")]
        assert "push.db" in made and "archiver.lock" in made, made
        for name in made:
            assert not os.lstat("/var/lib/mqchat/" + name).st_mode & 0o007, name

        # systemctl stop: SIGTERM to each, by PID; both leave with 0.
        for p in (a, b):
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=30) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for name, f in logs.items():
            f.seek(0)
            print("---- %s ----\n%s" % (name, f.read()[-3000:]))
            f.close()
        ns.close()


PG_BIN = "/usr/lib/postgresql/15/bin"


def test_the_store_on_postgresql(installed):
    """The installed CLI on a data folder whose store.conf says `store
    postgresql` loads /usr/lib/mqchat/mqchat_store_pg.so (beside its bin/
    folder's ../lib/mqchat) and works on a PostgreSQL of the test's own
    (tests/unit/pg_cluster.sh): init, an account added and read back."""
    if not os.access(os.path.join(PG_BIN, "initdb"), os.X_OK):
        pytest.skip("PostgreSQL 15 is not installed (no %s/initdb; Debian: postgresql-15)" % PG_BIN)
    cluster = os.path.join(ROOT, "tests", "unit", "pg_cluster.sh")
    # Not pytest's tmp_path: its folders are 0700 root's, and the server
    # runs as nobody.
    top = tempfile.mkdtemp(prefix="mqchat-pkg-pg-", dir="/tmp")
    os.chmod(top, 0o755)
    data = os.path.join(top, "data")
    os.mkdir(data, 0o750)
    try:
        r = run(["sh", cluster, "start", top])
        assert r.returncode == 0, r.stderr
        with open(os.path.join(data, "store.conf"), "w") as f:
            f.write("store postgresql\nstore_conninfo host=%s port=5432 user=mqchat dbname=postgres\n"
                    % os.path.join(top, "pg"))
        os.chmod(os.path.join(data, "store.conf"), 0o600)
        # As root: the server's socket is in its own folder (0700, the
        # server's user's), which root may enter.
        cli = ["/usr/bin/mqchat-archiver", "--data", data]
        r = run(cli + ["init"], env=ENV)
        assert r.returncode == 0 and "schema auth on PostgreSQL" in r.stdout, r.stdout + r.stderr
        assert not os.path.exists(os.path.join(data, "auth.db"))
        r = run(cli + ["user", "add", "pgalice", "--password-stdin"], input=PASSWORD + "\n", env=ENV)
        assert r.returncode == 0, r.stderr
        r = run(cli + ["user", "show", "pgalice"], env=ENV)
        assert r.returncode == 0 and "pgalice" in r.stdout, r.stdout + r.stderr
    finally:
        run(["sh", cluster, "stop", top])
        subprocess.run(["rm", "-rf", top])


def test_purge_leaves_nothing(installed):
    r = run(["dpkg", "--purge", "mqchat"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert package_status() in ("", "un", "pn")
    left = [p for p in OURS + ENABLED if os.path.lexists(p)]
    left += [p for p in installed["files"] if "mqchat" in p and os.path.lexists(p)]
    assert left == []
    assert not glob.glob("/var/lib/dpkg/info/mqchat.*")
    # mosquitto is back on its own configuration.
    assert not os.path.exists(os.path.dirname(DROPIN))
