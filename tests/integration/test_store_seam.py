"""test_store_seam.py - SQLite is called only behind the stores' seams.

The three stores (auth.db, archive.db, push.db) are to get a second
backend (PostgreSQL, docs/SCALING.md "The stores on PostgreSQL"). That is
only possible while the rest of the program reaches them through their
functions, never through SQLite itself. This test reads the sources of the
programs (common/, plugin/, archiver/, client/) and fails when a file not
listed below names SQLite's API (`sqlite3_*`, the `sqlite3` type or its
header) outside comments and strings. A file leaves the list when its
SQLite moves behind a store; one that no longer calls SQLite must leave
it (the list says what is true, not what once was).

The tests' own files use SQLite freely: they check the format on disk."""
import os
import re

import harness

# Each file allowed to call SQLite, and why.
ALLOWED = {
    # The backends: the only place each store's SQL lives.
    "common/userdb_sqlite.c": "the user store in SQLite (auth.db), behind userdb_store.h's table",
    "common/userdb_sqlite.h": "that backend's connection, for tests' raw SQL",
    "archiver/archive.c": "the archive in SQLite (archive.db), checkpoints and FTS watermark included",
    "archiver/archive_edit.c": "the same backend: edits and deletions (archive_ext.h)",
    "archiver/archive_search.c": "the same backend: search over its FTS5 index (archive_ext.h)",
    "archiver/archive_feed.c": "the same backend: the push thread's reads (archive.h, the feed)",
    "archiver/archive_sqlite.h": "the backend's connection, shared by its files (restore.c, tests)",
    "archiver/push_store_sqlite.c": "the push store in SQLite (push.db), behind push_store_backend.h's table",
    "archiver/push_store_sqlite.h": "its connection, for tests' raw SQL",
    "common/sqlutil.c": "helpers of the SQLite backends: result codes, schema version, writable check",
    "common/sqlutil.h": "the same",
    # SQLite-only by nature: a PostgreSQL store has its own tools
    # (pg_basebackup, pg_dump), and these are to refuse it.
    "archiver/backup.c": "copies the SQLite files online (sqlite3_backup) and checks them",
    "archiver/backup_internal.h": "the same",
    "archiver/restore.c": "checks and puts back SQLite files",
}

DIRS = ("common", "plugin", "archiver", "client")
SQLITE = re.compile(r"\bsqlite3(_\w+)?\b")
# Comments and string literals, which may name SQLite in prose.
PROSE = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"', re.S)


def sqlite_uses(root):
    """{relative path: first use} of every .c/.h file under root's DIRS that
    names SQLite's API in code."""
    found = {}
    for d in DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for name in sorted(files):
                if not name.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    code = PROSE.sub(" ", f.read())
                m = SQLITE.search(code)
                if m:
                    found[os.path.relpath(path, root)] = m.group(0)
    return found


def test_sqlite_only_in_allowed_files():
    found = sqlite_uses(harness.ROOT)
    outside = {p: use for p, use in found.items() if p not in ALLOWED}
    assert not outside, (
        "these files call SQLite outside a store backend (give them a store"
        f" function instead, or list them in ALLOWED with why): {outside}")


def test_allowed_files_still_use_sqlite():
    found = sqlite_uses(harness.ROOT)
    stale = sorted(p for p in ALLOWED if p not in found)
    assert not stale, f"these files no longer call SQLite: take them off ALLOWED: {stale}"


def test_the_scan_finds_a_call(tmp_path):
    """The scan itself sees a call in code, and not one in a comment or a
    string (else the tests above could never fail)."""
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "prose.c").write_text(
        '/* sqlite3_exec is not called here */\nconst char *s = "sqlite3_open";\n')
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "calls.c").write_text(
        "static int f(void *db) { return sqlite3_exec(db, \"\", 0, 0, 0); }\n")
    (tmp_path / "client").mkdir()
    (tmp_path / "client" / "type.h").write_text("struct x { sqlite3 *db; };\n")
    assert sqlite_uses(str(tmp_path)) == {
        os.path.join("plugin", "calls.c"): "sqlite3_exec",
        os.path.join("client", "type.h"): "sqlite3",
    }
