"""test_web_restart.py - the broker restarts under two browsers.

Both pages show that they are offline, keep what is typed meanwhile, and
once the broker is back reconnect by themselves, send it, and show every
message once; the archive stores each once. Its own stack (the broker is
stopped), so this module shares it with nobody.
"""
import json

from web_util import T, driver, people, stack_fixture  # noqa: F401 (fixtures)

web_env = stack_fixture(users=["uma", "vic"])

STATE = "(document.querySelector('#status') || {dataset: {}}).dataset.state"


def test_broker_restart_nothing_lost_or_doubled(web_env, people):
    # The pages log their refused WebSocket connections while the broker is down.
    people.allow(r"WebSocket connection to 'ws://127\.0\.0\.1:%d/.*' failed" % web_env.ws_port)
    people.allow(r"WebSocket .*(closed|failed|ERR_CONNECTION_REFUSED)")
    uma = people.login("uma")
    vic = people.login("vic", width=360, height=740)
    uma.open_conv("u:vic")
    vic.open_conv("u:uma")
    uma.send("before the restart")
    vic.wait_body("before the restart")
    vic.send("got it")
    uma.wait_body("got it")

    web_env.broker.stop()
    for p in (uma, vic):
        p.wait_fn("%s === 'reconnecting' || %s === 'offline'" % (STATE, STATE))
        p.wait_fn("(document.querySelector('#status').textContent || '').toLowerCase().includes('offline')"
                  " || (document.querySelector('#status').textContent || '').toLowerCase().includes('reconnecting')")
    people.shot(vic, "offline-360")

    # Typed while the broker is down: shown at once as pending.
    uma.send("typed while down 1")
    uma.send("typed while down 2")
    vic.send("vic while down")
    uma.wait_body("typed while down 2")
    vic.wait_body("vic while down")
    assert uma.attr(uma.msg_with("typed while down 1") + " .msg-status", "data-status") in ("pending", None)

    web_env.broker.start()
    web_env.wait_ws()
    for p in (uma, vic):
        p.wait_online(timeout=40)   # the app's backoff is at most 15 s
    want = ["before the restart", "got it", "typed while down 1", "typed while down 2", "vic while down"]
    for p in (uma, vic):
        for b in want:
            p.wait_body(b, timeout=T)
    # Nothing doubled on screen; Uma's own were sent (no longer pending).
    for p in (uma, vic):
        bodies = p.bodies()
        assert sorted(bodies) == sorted(want), (p.name, bodies)
    uma.wait_fn("[...document.querySelectorAll('#messages .msg.mine .msg-status')]"
                ".every(s => s.dataset.status !== 'pending' && s.dataset.status !== 'failed')")

    # The archive stores each once.
    def stored():
        rows = web_env.rows("SELECT body, count(*) FROM messages WHERE type='text' GROUP BY sender, id")
        return rows if sorted(b for b, _ in rows) == sorted(want) else None
    from harness import wait_for
    rows = wait_for(stored, T, what="the archive to hold the five texts")
    assert all(n == 1 for _, n in rows), rows
    assert len(web_env.rows("SELECT 1 FROM messages WHERE type='text'")) == len(want)

    # Live again both ways, and a reload shows the same, once each.
    vic.send("after the restart")
    uma.wait_body("after the restart")
    uma.reload()
    uma.wait_online()
    uma.wait_body("after the restart")
    assert sorted(uma.bodies()) == sorted(want + ["after the restart"]), uma.bodies()
    assert json.dumps(uma.bodies()).count("typed while down 1") == 1
