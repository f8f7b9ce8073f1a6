"""One place for the settings both the broker's plugin and the archiver
obey (common/settings.h): `mqchat-archiver settings list|set|unset`
writes the user store, and both follow it within a second, over their own
configuration (plugin_opt_registration, the archiver's registration)."""
import json
import time

import harness
from archiver_util import arch_env  # noqa: F401 (fixture)
from cli_util import INVALID, USAGE, fails, ok
from test_archiver_register import Reg, login

PW = "secret-pw-1"


# The settings of rooms run by their members, and the edit window, unset.
ROOMS = {"room_create": None, "rooms_per_owner": None, "room_members_max": None,
         "edit_window": None}


def settings(datadir):
    return {s["key"]: s["value"] for s in json.loads(ok(datadir, "settings", "list", "--json").out)}


def test_list_set_unset_and_bad_input(arch_env):
    env = arch_env()
    d = env.datadir
    assert settings(d) == dict(ROOMS, registration=None)
    assert ok(d, "settings", "list").out.startswith("registration -\t")
    assert ok(d, "settings", "set", "registration", "invite").out == "setting registration invite\n"
    assert settings(d) == dict(ROOMS, registration="invite")
    assert ok(d, "settings", "list").out.startswith("registration invite\t")
    # Bad input: a clear error, nothing changed.
    r = fails(d, INVALID, "settings", "set", "registration", "Open")
    assert "invalid value 'Open' for registration" in r.err and "off, invite" in r.err, r.err
    r = fails(d, INVALID, "settings", "set", "colour", "blue")
    assert "no setting 'colour'" in r.err, r.err
    fails(d, INVALID, "settings", "unset", "colour")
    fails(d, USAGE, "settings", "set", "registration")
    fails(d, USAGE, "settings", "set", "registration", "open", "now")
    fails(d, USAGE, "settings", "frobnicate")
    fails(d, USAGE, "settings", "list", "--colour")
    assert ok(d, "settings", "set", "--help").out.startswith("usage:")
    assert settings(d) == dict(ROOMS, registration="invite")
    assert env.store.sql("SELECT key, value FROM settings") == [("registration", "invite")]
    assert ok(d, "settings", "unset", "registration").out == "setting registration unset\n"
    assert ok(d, "settings", "unset", "registration").out == "setting registration unset\n"
    assert settings(d) == dict(ROOMS, registration=None)


def test_registration_follows_the_one_setting(arch_env):
    """The broker's plugin and the archiver are both configured "off"; the
    store's setting opens, restricts and closes registration for both."""
    env = arch_env(registration="off")
    d = env.datadir
    assert Reg(env).call(user="alice", password=PW)["error"] == "closed"

    t0 = time.monotonic()
    ok(d, "settings", "set", "registration", "open")
    ans = Reg(env).call(user="alice", password=PW)
    assert ans["ok"] is True, ans
    assert time.monotonic() - t0 < 5
    harness.wait_for(lambda: login(env, "alice", PW) == 0, 5, what="the new account logs in")

    ok(d, "settings", "set", "registration", "invite")
    assert Reg(env).call(user="bob", password=PW)["error"] == "invite_required"
    code = ok(d, "invite", "create").out.strip()
    assert Reg(env).call(user="bob", password=PW, invite=code)["ok"] is True

    # Back to each program's own configuration: off.
    ok(d, "settings", "unset", "registration")
    assert Reg(env).call(user="carol", password=PW)["error"] == "closed"
    # And "off" in the store closes a service configured open.
    assert env.store.sql("SELECT count(*) FROM users WHERE name='carol'") == [(0,)]


def test_the_store_can_close_what_the_configuration_opens(arch_env):
    env = arch_env(registration="open")
    ok(env.datadir, "settings", "set", "registration", "off")
    assert Reg(env).call(user="dave", password=PW)["error"] == "closed"
    ok(env.datadir, "settings", "unset", "registration")
    assert Reg(env).call(user="dave", password=PW)["ok"] is True


def test_edit_window_takes_seconds_from_0_to_30_days(arch_env):
    """edit_window (seconds; the edit and delete RPCs read it for each
    request): a whole number from 0 (no edits) to 2592000 (30 days);
    anything else is refused and changes nothing."""
    env = arch_env()
    d = env.datadir
    assert "edit_window -\t" in ok(d, "settings", "list").out
    for good in ("0", "60", "2592000"):
        assert ok(d, "settings", "set", "edit_window", good).out == "setting edit_window %s\n" % good
        assert settings(d)["edit_window"] == good
    for bad in ("2592001", "1h", "", "60s", "1e3", " 60"):
        r = fails(d, INVALID, "settings", "set", "edit_window", bad)
        assert "invalid value '%s' for edit_window" % bad in r.err, r.err
    fails(d, USAGE, "settings", "set", "edit_window", "-1")   # read as an option
    assert env.store.sql("SELECT value FROM settings WHERE key='edit_window'") == [("2592000",)]
    assert ok(d, "settings", "unset", "edit_window").out == "setting edit_window unset\n"
    assert settings(d) == dict(ROOMS, registration=None)
