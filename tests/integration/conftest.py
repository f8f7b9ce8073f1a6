"""conftest.py - pytest fixtures: a temp data folder, a user store, a broker.

    def test_x(store, broker):      # broker already started with the plugin
        store.add_user("alice")     # the plugin sees it within 1 s
        ...

Everything a fixture starts is stopped at the end of the test, pass or fail;
on failure the broker's log is printed.
"""
import os
import shutil

import pytest

import harness


@pytest.fixture
def datadir():
    d = harness.make_datadir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def store(datadir):
    return harness.Store(os.path.join(datadir, "auth.db"))


@pytest.fixture
def make_broker(datadir, store, request):
    """Factory: make_broker(registration="open", ...) -> started Broker."""
    started = []

    def make(start=True, **kw):
        b = harness.Broker(datadir, **kw)
        started.append(b)
        if start:
            b.start()
        return b
    yield make
    failed = getattr(request.node, "rep_call", None)
    for b in started:
        b.stop()
        if failed is not None and failed.failed:
            print("---- broker log (port %d) ----\n%s" % (b.port, b.output()))


@pytest.fixture
def broker(make_broker):
    return make_broker()


@pytest.fixture
def clients():
    """Factory for harness.Client; every client is closed at the end."""
    made = []

    def make(broker, username, password, **kw):
        c = harness.Client(broker.port, username, password, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
