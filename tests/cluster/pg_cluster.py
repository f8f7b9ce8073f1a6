"""Nodes with the bus on one PostgreSQL (docs/SCALING.md, "Archivers
sharing the work"): each node a broker with its spool, its archiver and
its bus, NATS between them, and every data folder's store.conf naming one
database, so the user store and the archive are shared. Used by
test_archive_pg.py and test_across.py."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import BUS_PLUGIN_OPTS, Bus, Nats, Node, client_to  # noqa: E402
import archiver_util  # noqa: E402
from cli_util import add_user, ok  # noqa: E402
from pg_util import psql, write_store_conf  # noqa: E402

PASSWORD = "password-cluster"


class PgCluster:
    """k nodes on one database, with users made by the CLI before they
    start; start()/stop(failed) fit harness.serve_stack."""

    def __init__(self, server, k=2, users=("alice", "bob")):
        self.root = tempfile.mkdtemp(prefix="mqchat-cluster-pg-")
        os.chmod(self.root, 0o755)
        self.server = server
        self.k = k
        self.users = list(users)
        self.db = "c%d" % os.getpid()
        self.admin = os.path.join(self.root, "admin")
        self.nodes, self.archivers, self.buses = [], [], []
        self.nats = Nats(self.root)
        self.made = []

    def conf(self, d):
        os.mkdir(d)
        write_store_conf(d, self.server, self.db)

    def start(self):
        psql(self.server, "postgres", "CREATE DATABASE %s" % self.db)
        self.conf(self.admin)
        ok(self.admin, "init")
        for u in self.users:
            add_user(self.admin, u, PASSWORD)
        self.nats.start()
        for i in range(self.k):
            d = os.path.join(self.root, "node%d" % (i + 1))
            self.conf(d)
            # One service account: the nodes share the password init made.
            shutil.copy2(os.path.join(self.admin, "archiver.pw"), d)
            n = Node("node%d" % (i + 1), "127.0.0.%d" % (i + 2), d, os.path.join(d, "auth.db"),
                     plugin_opts=BUS_PLUGIN_OPTS)
            self.nodes.append(n)
            n.start()
            a = archiver_util.Archiver(d, n.port, ["--host", n.host, "--spool"])
            self.archivers.append(a.start())
            self.buses.append(Bus(n, self.nats))
            self.buses[-1].start()

    def client(self, node, username, client_id, v5=False, clean=True):
        """A client of node (connected straight to it, not through a front)."""
        c = client_to(node, username, PASSWORD, client_id=client_id, v5=v5, clean=clean)
        self.made.append(c)
        return c

    def stop(self, failed=False):
        out = ""
        for c in self.made:
            c.close()
        if failed:
            for n, a, b in zip(self.nodes, self.archivers, self.buses):
                out += "\n---- %s ----\n%s\n---- archiver ----\n%s\n---- bus ----\n%s" % (
                    n.name, n.output()[-8000:], a.output()[-8000:], b.output()[-8000:])
        try:
            for b in self.buses:
                b.stop()
            for a in self.archivers:
                a.stop()
            for n in self.nodes:
                n.stop()
            self.nats.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            psql(self.server, "postgres", "DROP DATABASE IF EXISTS %s" % self.db)
        return out
