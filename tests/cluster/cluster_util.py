"""cluster_util.py - K mqchat nodes on loopback behind HAProxy, for tests.

    cluster = Cluster(k=3)          # node i on 127.0.0.(i+1), HAProxy on 127.0.0.1
    cluster.start()                 # bounded waits; every node UP in HAProxy
    c = cluster.client("alice", pw, client_id="alice@phone")
    cluster.node_of("alice@phone")  # the node whose own log accepted that client id
    cluster.stop()                  # everything stopped by PID, the folder removed

    cluster = Cluster(k=3, bus=True, front=False)   # the bus between the nodes:
    cluster.start()                 # nats-server, and per node a broker with its spool,
                                    # an archiver (--spool) and `mqchat-archiver bus`
    c = cluster.node_client(cluster.nodes[1], "bob")   # straight to a node

Each node is a real mosquitto with the real plugin (harness.Broker, with its
listener moved from 127.0.0.1 to the node's own loopback address, on a free
port), plus a WebSockets listener; all nodes read one auth.db (the plugin
only reads it, so sharing one file is fine on one machine). Each node has its
own folder for its config, log and persistence. HAProxy runs config/haproxy.cfg
itself, with only its addresses, ports, log target and stats socket rewritten
for the test (rewrite_config: every rewrite must match, so a changed config
fails here loudly instead of testing something else).

With bus=True (docs/SCALING.md, "The bus"), nats-server runs on a free port
of 127.0.0.1 (`nats-server -a 127.0.0.1 -p PORT`, stopped by PID) and each
node gets its own data folder for everything: auth.db copied from the
shared one when the cluster starts (the plugin puts DATA/spool and
DATA/inbox beside its auth.db, so nodes cannot share that folder), the
plugin's spool and inbox on, an archiver reading the spool, and a bus.

    with pg_util.pg_server() as server:
        cluster = Cluster(k=3, bus=True, pg=server)

With pg (a running server's folder, tests/integration/pg_util.py), every
node's DATA/store.conf says `store postgresql` on one database of that
server, made for the cluster and dropped by stop(): the user store, the
archive and the push store are shared (docs/SCALING.md, "Archivers
sharing the work"), and each node keeps only its spool, inbox and logs.
`init` runs in a folder of the cluster's own (admin_dir) and makes the
service account; cluster.store.add_user adds users with the CLI there;
cluster.sql(text) runs SQL in the database.
"""
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
import archiver_util  # noqa: E402
import cli_util  # noqa: E402
import pg_util  # noqa: E402

NATS_SERVER = shutil.which("nats-server") or "/usr/bin/nats-server"
BUS_PLUGIN_OPTS = {"spool_mb": 8, "bus_inbox_mb": 4}

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
HAPROXY_CFG = os.path.join(harness.ROOT, "config", "haproxy.cfg")
PASSWORD = "password-cluster"
FRONT_ADDRESS = "127.0.0.1"

# Where the tests' clients connect from: the front limits new and open
# connections per client address (config/haproxy.cfg, "Per client address"),
# and real clients have addresses of their own, so each connection a test
# makes comes from the next address of 127.0.1.1-254 unless the test names
# one (loopback answers for all of 127.0.0.0/8).
_SOURCES = itertools.cycle("127.0.1.%d" % i for i in range(1, 255))


def next_source():
    return next(_SOURCES)


# The bounds the config promises (config/haproxy.cfg, "Health checks"),
# with the slack of a shared 2-core test machine.
MARK_DOWN_BOUND = 3.0     # fall 2 x inter 1 s (+ timeout check) after a kill
MARK_UP_BOUND = 4.0       # rise 2 x inter 1 s after a restart


class Node(harness.Broker):
    """A mosquitto node with the real plugin on 127.0.0.<n>:<free port>,
    plus MQTT over WebSockets on 127.0.0.1:<ws_port> (mosquitto 2.0 hands a
    WebSockets listener's address to libwebsockets as an interface name:
    `lo`, as config/mosquitto.conf does, keeps it on loopback)."""

    def __init__(self, name, host, datadir, db, plugin_opts=None):
        self.name = name
        self.host = host
        self.ws_port = harness.free_port()
        extra = "listener %d lo\nprotocol websockets\n" % self.ws_port
        # HAProxy reaches the nodes from 127.0.0.1: the front's address,
        # whose connections skip the plugin's per-address throttles.
        super().__init__(datadir, db=db, extra_conf=extra,
                         plugin_opts=dict(plugin_opts or {}, front_addresses=FRONT_ADDRESS))
        with open(self.conf) as f:
            text = f.read()
        mine = "listener %d 127.0.0.1\n" % self.port
        assert text.count(mine) == 1, "harness.Broker's listener line changed:\n" + text
        with open(self.conf, "w") as f:
            f.write(text.replace(mine, "listener %d %s\n" % (self.port, host)))

    def start(self, timeout=harness.DEFAULT_TIMEOUT):
        """Start and wait (bounded) until the node accepts on its address."""
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen([harness.MOSQUITTO, "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.datadir, env=self.env())

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("node %s exited with %s:\n%s" % (
                    self.name, self.proc.returncode, self.output()))
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    pass
                with socket.create_connection(("127.0.0.1", self.ws_port), timeout=0.2):
                    return True
            except OSError:
                return False
        harness.wait_for(up, timeout, what="node %s on %s:%d" % (self.name, self.host, self.port))
        return 0

    def kill(self):
        """SIGKILL, as a crash: no clean save, no goodbye to clients."""
        self.stop(sig=signal.SIGKILL)

    def accepted(self, client_id):
        """How many times this node's own log says it accepted client_id.
        mosquitto writes "New client connected from <addr> as <id> (...)"
        once it has taken the CONNECT, before the CONNACK leaves."""
        pat = re.compile(r"New client connected from \S+ as %s \(" % re.escape(client_id))
        return len(pat.findall(self.output()))


def rewrite_config(text, listen, ws_listen, nodes, sock):
    """config/haproxy.cfg for a test: the MQTT and WebSockets frontends bound
    to listen and ws_listen ("127.0.0.1:port"), each backend's server lines
    replaced by one line per node (same name, id and options, the node's
    address and port), logs to stderr, the stats socket at sock, and the
    process kept in the foreground as the test's child (no chroot, user or
    daemon)."""
    out, section, done = [], None, set()
    for line in text.splitlines():
        s = line.strip()
        head = re.match(r"(global|defaults|frontend|backend|listen)\b\s*(\S*)", s)
        if head and not line[:1].isspace():
            section = head.group(2) or head.group(1)
        if s.startswith(("chroot ", "user ", "group ")) or s == "daemon":
            continue
        if s.startswith("log ") and section == "global":
            if "log" not in done:
                out.append("    log stderr format raw local0 info")
            done.add("log")
            continue
        if s.startswith("maxconn ") and section == "global":
            # Two descriptors a connection: within this machine's hard limit.
            out.append("    maxconn %d" % min(int(s.split()[1]), (hard_nofile() - 200) // 2))
            done.add("maxconn")
            continue
        if s.startswith("stats socket "):
            out.append("    stats socket %s mode 600 level admin" % sock)
            done.add("sock")
            continue
        if s.startswith("bind "):
            addr = {"mqtt": listen, "mqtt_ws": ws_listen}[section]
            out.append("    bind %s" % addr)
            done.add("bind " + section)
            continue
        m = re.match(r"server\s+(node\d+)\s+\S+:(\d+)(.*)$", s)
        if m:
            # Node lines come from the first server line of each backend.
            if "server " + section in done:
                continue
            done.add("server " + section)
            rest = re.sub(r"\bid \d+", "", m.group(3))
            rest = re.sub(r"track (\S+)/node\d+", r"track \1/{name}", rest)
            for i, n in enumerate(nodes):
                port = n.ws_port if m.group(2) == "8080" else n.port
                host = "127.0.0.1" if m.group(2) == "8080" else n.host
                out.append("    server %s %s:%d id %d%s" % (
                    n.name, host, port, i + 1, rest.replace("{name}", n.name)))
            continue
        out.append(line)
    want = {"log", "maxconn", "sock", "bind mqtt", "bind mqtt_ws", "server mqtt_nodes", "server mqtt_ws_nodes"}
    assert done == want, "config/haproxy.cfg no longer has %s" % sorted(want - done)
    return "\n".join(out) + "\n"


def hard_nofile():
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 20 if hard == resource.RLIM_INFINITY else hard


class Front:
    """HAProxy from config/haproxy.cfg, rewritten for the test, in the
    foreground (-db) as this process's child, stopped by PID."""

    def __init__(self, root, nodes, env=None, name="haproxy"):
        """env: environment for HAProxy (the config's limits are
        presetenv: MQCHAT_CONN_RATE and the others may be set here)."""
        self.root = root
        self.env = env
        self.port = harness.free_port()
        self.ws_port = harness.free_port()
        self.sock = os.path.join(root, name + ".sock")
        self.cfg = os.path.join(root, name + ".cfg")
        self.logpath = os.path.join(root, name + ".log")
        with open(HAPROXY_CFG) as f:
            text = f.read()
        with open(self.cfg, "w") as f:
            f.write(rewrite_config(text, "127.0.0.1:%d" % self.port, "127.0.0.1:%d" % self.ws_port,
                                   nodes, self.sock))
        self.nodes = nodes
        self.proc = None

    def start(self, timeout=harness.DEFAULT_TIMEOUT):
        self.proc = harness.Proc([HAPROXY, "-db", "-f", self.cfg], self.logpath, env=self.env)

        def up():
            if self.proc.proc.poll() is not None:
                raise AssertionError("haproxy exited with %s:\n%s" % (
                    self.proc.proc.returncode, self.proc.output()))
            return os.path.exists(self.sock) and all(
                s == "UP" for s in self.states().values())
        harness.wait_for(up, timeout, what="haproxy with every node UP")

    def command(self, cmd, timeout=5.0):
        """One command on the stats socket; its whole answer."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.sock)
            s.sendall(cmd.encode() + b"\n")
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return buf.decode()
                buf += chunk
        finally:
            s.close()

    def states(self, backend="mqtt_nodes"):
        """{server name: status ("UP", "DOWN", "UP 1/2", ...)} of a backend."""
        out = {}
        lines = self.command("show stat").splitlines()
        if not lines:
            return out
        cols = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(cols, line.split(",")))
            if row.get("pxname") == backend and row.get("svname") not in ("BACKEND", "FRONTEND"):
                out[row["svname"]] = row["status"]
        return out

    def cpu_seconds(self):
        """User + system CPU haproxy has used so far (/proc/<pid>/stat)."""
        with open("/proc/%d/stat" % self.proc.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


class Nats:
    """nats-server on 127.0.0.1:<free port>, this process's child."""

    def __init__(self, root):
        self.port = harness.free_port()
        self.logpath = os.path.join(root, "nats.log")
        self.proc = None

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def start(self, timeout=harness.DEFAULT_TIMEOUT):
        self.proc = harness.Proc([NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port)], self.logpath)

        def up():
            if self.proc.proc.poll() is not None:
                raise AssertionError("nats-server exited with %s:\n%s" % (
                    self.proc.proc.returncode, self.proc.output()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False
        harness.wait_for(up, timeout, what="nats-server on port %d" % self.port)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None:
            self.proc.stop(sig)
            self.proc = None


class Bus:
    """`mqchat-archiver bus` of a node, a child process stopped by PID."""

    def __init__(self, node, nats):
        self.node = node
        self.nats = nats
        self.logpath = os.path.join(node.datadir, "bus.log")
        self.proc = None

    def start(self, timeout=harness.DEFAULT_TIMEOUT, args=()):
        before = self.output().count("bus: node %s," % self.node.name)
        self.proc = harness.Proc([harness.ARCHIVER, "--data", self.node.datadir, "bus",
                                  "--node", self.node.name, "--nats", self.nats.url,
                                  "--host", self.node.host, "--port", str(self.node.port), "-v"]
                                 + list(args), self.logpath)

        def up():
            if self.proc.proc.poll() is not None:
                raise AssertionError("bus of %s exited with %s:\n%s" % (
                    self.node.name, self.proc.proc.returncode, self.output()))
            return self.output().count("bus: node %s," % self.node.name) > before
        harness.wait_for(up, timeout, what="bus of %s" % self.node.name)

    def output(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_log(self, text, n=1, timeout=harness.DEFAULT_TIMEOUT):
        return harness.wait_for(lambda: self.output().count(text) >= n, timeout,
                                what="bus of %s logging %r" % (self.node.name, text))

    def running(self):
        return self.proc is not None and self.proc.proc.poll() is None

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return None
        rc = self.proc.stop(sig)
        self.proc = None
        return rc


class PgStore:
    """The user store of a cluster on PostgreSQL, changed through the CLI of
    a data folder whose store.conf names the database (harness.Store's
    add_user for such a cluster)."""

    def __init__(self, admin_dir):
        self.admin_dir = admin_dir

    def add_user(self, name, password=PASSWORD, kind="user"):
        extra = () if kind == "user" else ("--kind", kind)
        cli_util.add_user(self.admin_dir, name, password, *extra)


write_store_conf = pg_util.write_store_conf


def client_to(node, username, password, **kw):
    """A harness.Client of node's own address (harness.Client connects to
    127.0.0.1; a node listens on its 127.0.0.x)."""
    c = harness.Client(node.port, username, password, **kw)
    connect = c.c.connect

    def to_node(host, *a, **k):
        return connect(node.host, *a, **k)
    c.c.connect = to_node
    return c


class Cluster:
    """k nodes (node1 on 127.0.0.2, node2 on 127.0.0.3, ...) sharing one
    auth.db, and HAProxy in front (front=False: none). bus=True: NATS and
    each node's archiver and bus too, each node with its own copy of
    auth.db (module docstring). start()/stop(failed) fit
    harness.serve_stack."""

    def __init__(self, k=3, bus=False, front=True, plugin_opts=None, front_env=None, pg=None,
                 archiver_args=()):
        """plugin_opts: more plugin options for every node (over the bus's
        own); front_env: HAProxy's environment (Front); pg: a running
        pg_util server's folder, to put every store there (with bus=True;
        module docstring); archiver_args: more arguments for every node's
        archiver."""
        self.root = tempfile.mkdtemp(prefix="mqchat-cluster-")
        os.chmod(self.root, 0o755)
        self.pg = pg
        self.archiver_args = list(archiver_args)
        if pg is not None:
            assert bus, "the stores on PostgreSQL go with bus=True (a data folder per node)"
            self.db = "cluster%d_%s" % (os.getpid(), os.urandom(3).hex())
            self.admin_dir = os.path.join(self.root, "admin")
            os.mkdir(self.admin_dir)
            pg_util.psql(pg, "postgres", "CREATE DATABASE %s" % self.db)
            write_store_conf(self.admin_dir, pg, self.db)
            cli_util.ok(self.admin_dir, "init")
            self.store = PgStore(self.admin_dir)
        else:
            self.store = harness.Store(os.path.join(self.root, "auth.db"))
        self.bus = bus
        self.nodes = []
        for i in range(k):
            d = os.path.join(self.root, "node%d" % (i + 1))
            os.mkdir(d)
            db = os.path.join(d, "auth.db") if bus else self.store.path
            self.nodes.append(Node("node%d" % (i + 1), "127.0.0.%d" % (i + 2), d, db,
                                   plugin_opts=dict(BUS_PLUGIN_OPTS if bus else {},
                                                    **(plugin_opts or {}))))
        self.front = Front(self.root, self.nodes, env=front_env) if front else None
        self.nats = Nats(self.root) if bus else None
        self.archivers = {}
        self.buses = {}
        if pg is not None:
            # init made the service account and its password file.
            with open(os.path.join(self.admin_dir, "archiver.pw")) as f:
                self.service_pw = f.read().strip()
        elif bus:
            self.service_pw = "svc-" + os.urandom(16).hex()
            self.store.add_user("archiver", password=self.service_pw, kind="service")
        self.made = []

    def start(self):
        if self.bus:
            self.nats.start()
            for n in self.nodes:
                if self.pg is not None:
                    write_store_conf(n.datadir, self.pg, self.db)
                else:
                    # The users and rooms the test made before start, and the
                    # service account of the node's archiver and bus.
                    shutil.copyfile(self.store.path, n.db)
                pwfile = os.path.join(n.datadir, "archiver.pw")
                fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(self.service_pw + "\n")
        for n in self.nodes:
            n.start()
            if self.bus:
                self.archivers[n.name] = archiver_util.Archiver(
                    n.datadir, n.port, ["--host", n.host, "--spool"] + self.archiver_args).start()
                self.buses[n.name] = Bus(n, self.nats)
                self.buses[n.name].start()
        if self.front is not None:
            self.front.start()

    def stop(self, failed=False):
        """Stop every client, HAProxy, every bus, archiver and node, and
        NATS (by PID), remove the folder; return the logs if failed."""
        for c in self.made:
            c.close()
        out = ""
        if failed:
            if self.front is not None:
                out = "---- haproxy ----\n%s" % (self.front.proc.output() if self.front.proc else "")
            for n in self.nodes:
                out += "\n---- %s (%s:%d) ----\n%s" % (n.name, n.host, n.port, n.output())
                if n.name in self.buses:
                    out += "\n---- bus of %s ----\n%s" % (n.name, self.buses[n.name].output()[-20000:])
                if n.name in self.archivers:
                    out += "\n---- archiver of %s ----\n%s" % (
                        n.name, self.archivers[n.name].output()[-8000:])
        if self.front is not None:
            self.front.stop()
        try:
            for b in self.buses.values():
                b.stop()
            for a in self.archivers.values():
                a.stop()
            for n in self.nodes:
                n.stop()
            if self.nats is not None:
                self.nats.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            if self.pg is not None:
                pg_util.psql(self.pg, "postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.db)
        return out

    def sql(self, text):
        """Rows (lists of text) of text run in the cluster's database (pg only)."""
        return pg_util.psql(self.pg, self.db, text)

    def node_client(self, node, username, password=PASSWORD, client_id=None, v5=False, **kw):
        """A harness.Client straight to node (its own address), not through
        HAProxy. Closed by stop()."""
        c = client_to(node, username, password, client_id=client_id, v5=v5, **kw)
        self.made.append(c)
        return c

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def client(self, username, password=PASSWORD, client_id=None, v5=False, ws=False,
               source=None, front=None, **kw):
        """A harness.Client through HAProxy (MQTT, or WebSockets with the
        client id in the URL as ?cid=, as config/haproxy.cfg asks), from
        source (default: next_source()), through front (default: the
        cluster's). Closed by stop()."""
        front = front or self.front
        c = harness.Client(front.ws_port if ws else front.port, username, password,
                           client_id=client_id, v5=v5, source=source or next_source(), **kw)
        if ws:
            import paho.mqtt.client as mqtt
            proto = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
            cid = c.client_id
            if v5:
                c.c = _rebuild(c, mqtt.Client(client_id=cid, protocol=proto, transport="websockets"))
            else:
                c.c = _rebuild(c, mqtt.Client(client_id=cid, protocol=proto, clean_session=c.clean,
                                              transport="websockets"))
            # Percent-encoded as a browser's encodeURIComponent does ("@" is
            # %40): the front decodes it (url_dec) before hashing.
            c.c.ws_set_options(path="/mqtt?cid=%s" % urllib.parse.quote(cid, safe=""))
            if username is not None:
                c.c.username_pw_set(username, password)
        self.made.append(c)
        return c

    def node_of(self, client_id, count=1, timeout=harness.DEFAULT_TIMEOUT):
        """The one node whose log shows client_id accepted `count` times;
        fails if another node accepted it too. Polls (bounded): the log line
        can come a moment after the CONNACK."""
        def where():
            seen = {n.name: n.accepted(client_id) for n in self.nodes if n.proc is not None}
            hits = [name for name, k in seen.items() if k]
            total = sum(seen.values())
            if total > count or len(hits) > 1:
                raise AssertionError("%s accepted by several nodes or too often: %s" % (
                    client_id, seen))
            return hits[0] if total == count else None
        return harness.wait_for(where, timeout, what="a node accepting %s" % client_id)


def _rebuild(c, new):
    """Move harness.Client c's callbacks onto a new paho client."""
    for name in ("on_connect", "on_message", "on_disconnect", "on_subscribe", "on_publish"):
        setattr(new, name, getattr(c.c, name))
    return new
