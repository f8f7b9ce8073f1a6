"""test_web_push.py - the web app's notifications (client/web/js/push.js,
sw.js; docs/PUSH.md) and its conversation menu's mute, in headless Chromium
against the real broker, plugin and archiver.

Headless Chromium reaches no push service, so the page's
PushManager.prototype.subscribe and getSubscription are replaced before the
app loads (driver initScript) by ones that hand out a subscription of the
fake Web Push service (push_fakes.WebPushFake: endpoint, p256dh and auth
whose private halves the fake decrypts with), kept in localStorage as a
browser keeps its subscription. The rest is real: the permission (granted
to the context, as a person's "Allow"), the service worker, push_config,
push_register and push_unregister, the archiver's encrypted, VAPID-signed
POST to the fake, and the service worker showing what it carries
(delivered to it over CDP)."""
import json
import os

import pytest

import harness
from client_util import mqchat
from push_fakes import WebPushFake, b64u, p256_raw
from web_util import T, DriverError, Stack, driver, people  # noqa: F401 (fixtures)

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

# The fake subscription, as the page's PushManager hands it out. SUB is
# {endpoint, p256dh, auth}; subscribe() records its options in
# localStorage 'test.push.calls' and checks them as Chromium would.
FAKE_PUSH = r"""(() => {
  if (!window.PushManager) return;
  const SUB = %s;
  const KEY = 'test.push.sub';
  const make = (d) => ({
    endpoint: d.endpoint, expirationTime: null,
    options: {userVisibleOnly: true, applicationServerKey: new Uint8Array(d.key).buffer},
    toJSON() { return {endpoint: d.endpoint, expirationTime: null, keys: {p256dh: d.p256dh, auth: d.auth}}; },
    getKey() { return null; },
    unsubscribe() { localStorage.removeItem(KEY); return Promise.resolve(true); },
  });
  PushManager.prototype.subscribe = function (opts) {
    const calls = JSON.parse(localStorage.getItem('test.push.calls') || '[]');
    const key = opts && opts.applicationServerKey ? Array.from(new Uint8Array(opts.applicationServerKey)) : null;
    calls.push({userVisibleOnly: !!(opts && opts.userVisibleOnly), key});
    localStorage.setItem('test.push.calls', JSON.stringify(calls));
    if (!opts || opts.userVisibleOnly !== true || !key) {
      return Promise.reject(new DOMException('userVisibleOnly and a key are required', 'NotAllowedError'));
    }
    const d = Object.assign({key}, SUB);
    localStorage.setItem(KEY, JSON.stringify(d));
    return Promise.resolve(make(d));
  };
  PushManager.prototype.getSubscription = function () {
    const d = JSON.parse(localStorage.getItem(KEY) || 'null');
    return Promise.resolve(d ? make(d) : null);
  };
})();"""


def vapid_key(path):
    """A VAPID key pair as init makes it (PKCS#8 PEM, mode 0600); its public
    key, base64url."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return b64u(p256_raw(key.public_key()))


@pytest.fixture(scope="module")
def web_env(request, driver):  # noqa: F811 (web_util's, with push set up)
    s = Stack(users=("alice", "bob"), rooms={"lobby": ["alice", "bob"]},
              arch_args=["--push-allow-http", "1", "--push-collapse-ms", "100"])
    s.vapid_public = vapid_key(os.path.join(s.datadir, "vapid.pem"))
    s.webpush = WebPushFake()
    yield from harness.serve_stack(request, s, also_stop=[s.webpush])


def cli(env, user, *args):
    """The command-line client as user against the same stack (its JSON lines)."""
    r = mqchat(env.broker, env.datadir, user, *args, "--json")
    assert r.rc == 0, r
    return [json.loads(ln) for ln in r.out.splitlines()]


def presence(env, viewer, user):
    """user's presence status as viewer's `mqchat who` sees it."""
    r = mqchat(env.broker, env.datadir, viewer, "who", user, "--json")
    return json.loads(r.out)["status"] if r.rc == 0 and r.out else None


def open_with_fake_push(people, env, name, sub, ctx=None):  # noqa: F811
    """A page of name (in context ctx) whose browser 'has' Web Push through
    the fake, with notifications allowed; not logged in yet."""
    p = people.open(name, ctx=ctx, user=name)
    p.initScript(js=FAKE_PUSH % json.dumps({"endpoint": sub.endpoint, "p256dh": sub.p256dh,
                                            "auth": sub.auth}))
    p.grant(origin=env.url.rstrip("/"), permissions=["notifications"])
    p.reload()
    return p


def settings(p):
    p.goto("#/settings")
    p.wait("#settings-notifications")
    p.wait_fn("!document.querySelector('#push-toggle').disabled")
    p.wait_fn("!document.querySelector('#push-previews').disabled")


def test_toggle_registers_and_removes_a_webpush_target(web_env, people):  # noqa: F811
    env = web_env
    sub = env.webpush.subscribe(server_key=env.vapid_public)
    alice = open_with_fake_push(people, env, "alice", sub)
    alice.login("alice")
    device = alice.js("localStorage.getItem('mqchat.device')").strip('"')
    settings(alice)
    assert alice.js("document.querySelector('#push-toggle').checked") is False
    people.shot(alice, "web-settings-notifications-off")

    alice.click("#push-toggle")
    alice.wait_text("#push-status", "Notifications are on for this device.")
    assert alice.js("document.querySelector('#push-toggle').checked") is True
    people.shot(alice, "web-settings-notifications", readme=True)
    # subscribe() got the server's VAPID key (push_config) and userVisibleOnly
    calls = json.loads(alice.js("localStorage.getItem('test.push.calls')"))
    assert len(calls) == 1 and calls[0]["userVisibleOnly"] is True, calls
    assert b64u(bytes(calls[0]["key"])) == env.vapid_public, calls
    # the service worker is the app's, at its root
    scope = alice.js("navigator.serviceWorker.getRegistration().then((r) => r && r.scope)")
    assert scope == env.url, scope
    targets = cli(env, "alice", "push", "list")
    assert [(t["device"], t["provider"]) for t in targets] == [(device, "webpush")], targets

    # the service worker shows what a push brings (delivered to it as the
    # browser would): "New message", who wrote (the text only with
    # previews), tagged with the conversation so that the next replaces it
    origin = env.url.rstrip("/")
    shown = ("navigator.serviceWorker.getRegistration().then((r) => r.getNotifications({tag: %s}))"
             ".then((ns) => ns.length > 0 && {title: ns[0].title, body: ns[0].body, tag: ns[0].tag})")
    def push_shown(data, tag):
        """Deliver data to the service worker and return the notification
        it shows with tag. DevTools' delivery to a worker it is just
        waking was seen lost once in a full run: delivered again (at most
        3 times; the tag makes a second one replace the first)."""
        for attempt in range(3):
            alice.swPush(origin=origin, data=json.dumps(data))
            try:
                return alice.wait_fn(shown % json.dumps(tag), timeout=T / 2)
            except DriverError:
                if attempt == 2:
                    raise
    assert push_shown({"type": "message", "with": "bob", "from": "bob", "id": "m-1", "seq": 7,
                       "count": 1}, "#/u/bob") == \
        {"title": "New message", "body": "from bob", "tag": "#/u/bob"}
    assert push_shown({"type": "message", "room": "lobby", "from": "bob", "id": "m-2", "seq": 9,
                       "count": 3, "body": "see you at 8"}, "#/r/lobby") == \
        {"title": "3 new messages", "body": "bob: see you at 8", "tag": "#/r/lobby"}

    # alice offline: bob's text reaches her through the push service,
    # encrypted for her subscription and signed with the server's key
    people.close(alice)
    harness.wait_for(lambda: presence(env, "bob", "alice") != "online", T,
                     what="alice's presence to go offline")
    mqchat(env.broker, env.datadir, "bob", "send", "alice", "are you there?")
    env.webpush.wait_delivered(1, key=sub.id, timeout=T)
    env.webpush.assert_refused_nothing()
    n = env.webpush.notifications(sub.id)[0]
    assert n["type"] == "message" and n["with"] == "bob" and n["from"] == "bob", n
    assert "body" not in n, n   # previews are off by default

    # back: the page shows the toggle on (its subscription and the target)
    alice = open_with_fake_push(people, env, "alice2", sub, ctx="alice")
    alice.wait_online()
    settings(alice)
    alice.wait_fn("document.querySelector('#push-toggle').checked === true")

    # off: the browser's subscription goes, then the server's target
    alice.click("#push-toggle")
    alice.wait_text("#push-status", "Notifications are off for this device.")
    assert alice.js("localStorage.getItem('test.push.sub')") is None
    assert cli(env, "alice", "push", "list") == []


def test_previews_toggle(web_env, people):  # noqa: F811
    env = web_env
    bob = people.login("bob")
    settings(bob)
    assert bob.js("document.querySelector('#push-previews').checked") is False
    bob.click("#push-previews")
    bob.wait_text("#push-status", "Saved.")
    assert cli(env, "bob", "push", "previews") == [{"ok": True, "previews": True}]
    bob.click("#push-previews")
    bob.wait_fn("document.querySelector('#push-previews').checked === false"
                " && !document.querySelector('#push-previews').disabled")
    assert cli(env, "bob", "push", "previews") == [{"ok": True, "previews": False}]


def test_mute_from_the_conversation_menu(web_env, people):  # noqa: F811
    env = web_env
    bob = people.login("bob", name="bob-mute")
    bob.open_conv("r:lobby")
    bob.click("#chat-menu")
    assert bob.texts("#chat-menu-list button") == ["Mute for 1 hour", "Mute for 8 hours", "Mute always"]
    bob.click("#chat-menu-list [data-action=mute-8h]")
    bob.wait(".conv[data-conv='r:lobby'] .conv-muted")
    bob.wait("#chat-muted")
    assert bob.text("#chat-muted").startswith("Muted until "), bob.text("#chat-muted")
    mutes = cli(env, "bob", "mutes")
    assert [m.get("room") for m in mutes] == ["lobby"] and mutes[0]["until"] > 0, mutes
    people.shot(bob, "web-conversation-muted")
    # a direct conversation, always; then unmuted
    bob.open_conv("u:alice")
    bob.send("muting you for a while")
    bob.wait(".conv[data-conv='u:alice']")
    bob.click("#chat-menu")
    bob.click("#chat-menu-list [data-action=mute-always]")
    bob.wait(".conv[data-conv='u:alice'] .conv-muted")
    assert bob.text("#chat-muted") == "Muted"
    assert {"with": "alice", "until": 0} in cli(env, "bob", "mutes")
    bob.click("#chat-menu")
    assert bob.texts("#chat-menu-list button") == ["Unmute"]
    bob.click("#chat-menu-list [data-action=unmute]")
    bob.wait_gone(".conv[data-conv='u:alice'] .conv-muted")
    assert [m.get("room") for m in cli(env, "bob", "mutes")] == ["lobby"]
    # on a phone the menu stays on the screen
    bob.viewport(width=360, height=740)
    bob.click("#chat-menu")
    bob.wait("#chat-menu-list")
    assert bob.js("(() => { const r = document.querySelector('#chat-menu-list').getBoundingClientRect();"
                  " return r.left >= 0 && r.right <= innerWidth; })()") is True
    people.shot(bob, "web-conversation-menu-phone")
    bob.press("Escape")
    bob.wait_gone("#chat-menu-list")
    bob.viewport(width=1280, height=800)
    # a reload shows the mutes the server keeps
    bob.reload()
    bob.wait_online()
    bob.open_conv("r:lobby")
    bob.wait("#chat-muted")
    bob.wait(".conv[data-conv='r:lobby'] .conv-muted")
    bob.wait(".conv[data-conv='u:alice']")
    assert bob.count(".conv .conv-muted:not([hidden])") == 1
