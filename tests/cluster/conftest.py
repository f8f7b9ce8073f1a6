"""conftest.py - tests/cluster: each test's outcome on its item (rep_call),
which harness.module_failed reads to print a cluster's logs when a test of
its module failed (tests/integration/conftest.py does the same there)."""
import pytest


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
