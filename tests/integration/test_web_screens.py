"""test_web_screens.py - the README's screenshots, and what they show.

A conversation with a reply, reactions, an edited and a deleted message, a
room and an unread one are made over plain MQTT and RPC (as any app
would); the web app then shows them at 1280x800 (light and dark) and at
360x740 (the list, then the conversation). MQCHAT_SCREENSHOTS=docs/screenshots
copies the pictures there.
"""
import json
import time
import uuid

import harness
from archiver_util import Rpc, inbox, room, rpc_ok
from harness import wait_for
from web_util import T, driver, people, stack_fixture  # noqa: F401 (fixtures)

web_env = stack_fixture(users=["ana", "ben", "cleo", "dan"], rooms={"trip": ["ana", "ben", "cleo"]})


def env(body=None, **kw):
    e = {"id": uuid.uuid4().hex[:20], "ts": int(time.time() * 1000)}
    if body is not None:
        e.update(type="text", body=body)
    e.update(kw)
    return e


def publish(client, topic, e):
    client.publish(topic, json.dumps(e))
    return e["id"]


def populate(stack):
    st = stack.store
    for name, nick in (("ana", "Ana Lima"), ("ben", "Ben Okafor"), ("cleo", "Cleo Park"), ("dan", "Dan Reyes")):
        st.sql("UPDATE users SET nick=? WHERE name=?", nick, name)
    st.sql("INSERT INTO room_meta(room, owner, title) VALUES('trip', 'ana', 'Weekend trip')")
    for a in ("ana", "ben", "cleo", "dan"):
        for b in ("ana", "ben", "cleo", "dan"):
            if a != b:
                st.add_contact(a, b)
    clients = {}
    for u in ("ana", "ben", "cleo", "dan"):
        stack.wait_login(u)
        c = harness.Client(stack.broker.port, u, "password-xxxx", client_id=u + "@seed")
        assert c.connect() == 0
        clients[u] = c
    try:
        ana, ben, cleo, dan = (clients[u] for u in ("ana", "ben", "cleo", "dan"))
        publish(cleo, room("trip", "cleo"), env("Weather looks good for Saturday \u2600\ufe0f"))
        publish(ben, room("trip", "ben"), env("I put the trail map in the shared folder"))
        publish(ana, room("trip", "ana"), env("See you all at the station at 8"))
        publish(ben, inbox("ana", "ben"), env("Are we still on for Saturday?"))
        publish(ana, inbox("ben", "ana"), env("Yes! Leaving at 8 sharp."))
        m_map = publish(ben, inbox("ana", "ben"), env("I'll bring the map"))
        m_wrong = publish(ben, inbox("ana", "ben"), env("wrong chat, sorry"))
        m_reply = publish(ana, inbox("ben", "ana"), env("Great, I'll bring snacks then \U0001F96A",
                                                         reply_to=m_map, reply_from="ben"))
        publish(ben, inbox("ana", "ben"), env(type="reaction", ref=m_reply, of="ana", emoji="\u2764\ufe0f"))
        publish(ana, inbox("ben", "ana"), env(type="reaction", ref=m_map, of="ben", emoji="\U0001F44D"))
        publish(ben, inbox("ana", "ben"), env("See you there \U0001F44B"))
        publish(dan, inbox("ana", "dan"), env("Did you see the photos from last week?"))
        wait_for(lambda: stack.rows("SELECT count(*) FROM messages WHERE type='text'")[0][0] >= 10, T,
                 what="the archive to store the seed")
        rpc = Rpc(ben, "ben")
        rpc_ok(rpc, "edit", ref=m_map, body="I'll bring the map and the compass")
        rpc_ok(rpc, "delete", ref=m_wrong)
    finally:
        for c in clients.values():
            c.close()


def test_screenshots_of_the_list_and_a_conversation(web_env, people):
    populate(web_env)
    ana = people.login("ana", width=1280, height=800)
    ana.wait(".conv[data-conv='u:dan'] .conv-badge")
    ana.click(".conv[data-conv='u:ben'] .conv-name")
    ana.wait_body("See you there \U0001F44B")
    ana.wait(ana.msg_with("I'll bring the map and the compass") + " .msg-edited")
    ana.wait("#messages .msg.deleted")
    ana.wait(ana.msg_with("Great, I'll bring snacks then \U0001F96A") + " .reaction[data-emoji='\u2764\ufe0f']")
    ana.wait(ana.msg_with("I'll bring the map and the compass") + " .reaction[data-emoji='\U0001F44D']")
    ana.wait_text(ana.msg_with("Great, I'll bring snacks then \U0001F96A") + " .msg-reply", "I'll bring the map")
    # The list beside it: the room, the unread one with its badge.
    assert ana.text(".conv[data-conv='u:dan'] .conv-badge").strip() == "1"
    assert "Weekend trip" in ana.text(".conv[data-conv='r:trip'] .conv-name")
    assert ana.visible(sel="#side") and ana.visible(sel="#messages")
    ana.js("document.activeElement && document.activeElement.blur()")
    people.shot(ana, "desktop-1280x800", readme=True)
    ana.dark()
    ana.wait_fn("matchMedia('(prefers-color-scheme: dark)').matches")
    # Dark mode really changes the page's colours.
    bg = ana.js("getComputedStyle(document.body).backgroundColor")
    people.shot(ana, "desktop-1280x800-dark", readme=True)
    ana.dark(dark=False)
    ana.wait_fn("!matchMedia('(prefers-color-scheme: dark)').matches")
    assert ana.js("getComputedStyle(document.body).backgroundColor") != bg

    # Phone: one pane at a time, the list then the conversation.
    ana.viewport(width=360, height=740)
    ana.goto("#/")
    ana.wait(".conv[data-conv='u:ben']")
    ana.wait_fn("!document.querySelector('#chat') || document.querySelector('#chat').getClientRects().length === 0")
    people.shot(ana, "phone-list-360x740", readme=True)
    ana.click(".conv[data-conv='u:ben'] .conv-name")
    ana.wait_body("See you there \U0001F44B")
    ana.wait("#chat-back")
    assert not ana.visible(sel="#convs")
    people.shot(ana, "phone-chat-360x740", readme=True)
    # No horizontal scrolling at 360 px.
    assert ana.js("document.documentElement.scrollWidth <= 360"), ana.js("document.documentElement.scrollWidth")
    ana.goto("#/r/trip")
    ana.wait_body("See you all at the station at 8")
    people.shot(ana, "phone-room-360x740")
