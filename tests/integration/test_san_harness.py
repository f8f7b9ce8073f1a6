"""test_san_harness.py - a sanitizer report from inside the broker fails the test.

Builds tests/integration/san_bad_plugin.c with -fsanitize=address,undefined
and loads it the way `make test SAN=1` loads the real plugin (harness.SAN on:
ASan runtime and plugin preloaded, reports to files in the data folder).
Runs in every test run, sanitized build or not, so the check itself is
tested.
"""
import os
import shutil
import subprocess

import pytest

import harness

SRC = os.path.join(os.path.dirname(__file__), "san_bad_plugin.c")
CC = os.environ.get("CC") or "cc"


@pytest.fixture
def bad_plugin(datadir, monkeypatch):
    if shutil.which(CC) is None:
        pytest.fail("no C compiler %r to build the planted-fault plugin" % CC)
    out = os.path.join(datadir, "san_bad_plugin.so")
    subprocess.run([CC, "-shared", "-fPIC", "-g", "-O0", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=undefined", "-o", out, SRC], check=True, timeout=60)
    monkeypatch.setattr(harness, "SAN", True)
    return out


def start(datadir, plugin, fault, expect_fail=False):
    # No plugin_opt_db: mosquitto 2.0.11 refuses plugin_opt_ keys shorter
    # than 3 characters; this plugin needs none.
    b = harness.Broker(datadir, plugin=plugin, plugin_opts={"db": None, "registration": None,
                                                            "fault": fault})
    rc = b.start(expect_fail=expect_fail)
    return b, rc


def test_clean_plugin_passes(datadir, bad_plugin):
    b, _ = start(datadir, bad_plugin, "none")
    b.stop()   # no report: must not raise
    assert b.san_reports() == []


def test_leak_fails_at_stop_and_names_the_function(datadir, bad_plugin):
    b, _ = start(datadir, bad_plugin, "leak")
    with pytest.raises(AssertionError) as e:
        b.stop()
    text = str(e.value)
    assert "LeakSanitizer" in text
    # The plugin is preloaded, so the stack is symbolized after dlclose().
    assert "planted_leak" in text
    # Raised once: the report is marked seen, a second stop is quiet.
    assert b.san_reports() == []
    b.stop()


def test_heap_overflow_stops_broker_with_report(datadir, bad_plugin):
    b, rc = start(datadir, bad_plugin, "overflow", expect_fail=True)
    assert rc == harness.SAN_EXITCODE
    assert "heap-buffer-overflow" in b.output()
    with pytest.raises(AssertionError) as e:
        b.stop()
    assert "planted_overflow" in str(e.value)


def test_undefined_behaviour_stops_broker_with_report(datadir, bad_plugin):
    b, rc = start(datadir, bad_plugin, "ubsan", expect_fail=True)
    assert rc != 0
    with pytest.raises(AssertionError) as e:
        b.stop()
    assert "signed integer overflow" in str(e.value)


def test_broker_own_leak_on_error_exit_is_not_ours(datadir, bad_plugin):
    # A refused config: mosquitto exits through a path that leaks its own
    # allocations (no frame of ours): reported, but not a failure of ours.
    b = harness.Broker(datadir, plugin=bad_plugin, plugin_opts={"db": None, "registration": None},
                       extra_conf="plugin_opt_x y")
    assert b.start(expect_fail=True) != 0
    assert "Invalid auth_opt_" in b.output()
    b.stop()


def test_leak_filter_keeps_own_frames():
    report = ("==1==ERROR: LeakSanitizer: detected memory leaks\n\n"
              "Direct leak of 8 byte(s) in 1 object(s) allocated from:\n"
              "    #0 0x1 in malloc\n    #1 0x2 in mosquitto__malloc (/usr/sbin/mosquitto+0x1)\n\n"
              "Direct leak of 9 byte(s) in 1 object(s) allocated from:\n"
              "    #0 0x1 in malloc\n    #1 0x2 in acl__load (build-san/mqchat_auth.so+0x5)\n\n"
              "SUMMARY: AddressSanitizer: 17 byte(s) leaked in 2 allocation(s).\n")
    kept = harness.san_own_leaks(report, ("mqchat_auth.so",))
    assert "acl__load" in kept and "mosquitto__malloc" not in kept
    assert harness.san_own_leaks(report, ("nothing-of-ours",)) is None
    overflow = "==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x1\n"
    assert harness.san_own_leaks(overflow, ("x",)) == overflow


def test_proc_with_report_fails(datadir, monkeypatch):
    monkeypatch.setattr(harness, "SAN", True)
    script = "import sys; sys.stderr.write('==1==ERROR: AddressSanitizer: heap-use-after-free\\n'); sys.exit(86)"
    p = harness.Proc(["/usr/bin/python3", "-c", script], os.path.join(datadir, "p.log"))
    p.proc.wait(timeout=10)
    with pytest.raises(AssertionError) as e:
        p.stop()
    assert "heap-use-after-free" in str(e.value)
