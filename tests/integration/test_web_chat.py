"""test_web_chat.py - the web app in headless Chromium: people chat.

One broker + plugin + archiver (serving the app) for the module, one
Chromium per pytest worker, a browser context per person (own
localStorage). Each test has people of its own, so the tests do not see
each other's conversations. Any console error or CSP violation of a page
fails the test (web_util.People).
"""
import json


from web_util import T, driver, stack_fixture  # noqa: F401 (fixtures)
from web_util import people  # noqa: F401

web_env = stack_fixture(
    users=["alice", "bob", "carol", "dave", "erin", "fred", "gina", "hugo", "ines", "jon",
           "kim", "lea", "max", "nia", "olaf", "pia", "quin", "rob", "sol", "tom"],
    rooms={"lab": ["carol", "dave", "erin"]})


def conv(key):
    return ".conv[data-conv=%s]" % json.dumps(key)


def test_two_people_chat_both_ways_then_a_reload_logs_in_with_the_token(web_env, people):
    alice = people.login("alice")
    bob = people.login("bob", width=360, height=740)

    # The first login kept a device token, never the password.
    s = alice.session()
    assert s["user"] == "alice" and s["token"].startswith("mqt1.") and s["device"], s
    storage = alice.js("JSON.stringify(Object.assign({}, localStorage))")
    assert "password-xxxx" not in storage

    # Alice starts the conversation from the list: new chat, bob, Enter.
    alice.click("#new-chat")
    alice.type("#new-chat-user", "bob")
    alice.press("Enter")
    alice.wait_fn("location.hash === '#/u/bob'")
    alice.wait("#chat[data-conv='u:bob'] #composer")
    alice.send("hi bob", typed=True)
    alice.wait_body("hi bob")
    assert alice.text("#composer") == "" and alice.js("document.querySelector('#composer').value") == ""

    # Bob sees it in his list with a badge, opens it, answers.
    bob.wait_text(conv("u:alice") + " .conv-last", "hi bob")
    assert bob.text(conv("u:alice") + " .conv-badge").strip() == "1"
    bob.click(conv("u:alice") + " .conv-name")
    bob.wait_body("hi bob")
    bob.send("hi alice, from a phone")
    alice.wait_body("hi alice, from a phone")
    bob.wait_body("hi alice, from a phone")
    want = ["hi bob", "hi alice, from a phone"]
    alice.wait_bodies(want)
    bob.wait_bodies(want)
    assert alice.attr(alice.msg_with("hi bob"), "data-from") == "alice"
    assert "mine" in alice.attr(alice.msg_with("hi bob"), "class").split()
    assert "mine" not in bob.attr(bob.msg_with("hi bob"), "class").split()
    # Bob's badge went when he looked.
    bob.click("#chat-back")
    bob.wait(conv("u:alice"))
    bob.wait_fn("(() => { const b = document.querySelector(%s);"
                " return !!b && (b.hidden || b.textContent.trim() === '' || b.textContent.trim() === '0'); })()"
                % json.dumps(conv("u:alice") + " .conv-badge"))

    # A reload logs in with the stored token: no login form, same token.
    alice.reload()
    alice.wait_online()
    assert not alice.visible(sel="#login-form")
    assert alice.session() == s
    alice.wait_fn("location.hash === '#/u/bob'")
    alice.wait_body("hi alice, from a phone")
    alice.wait_bodies(want)
    people.shot(alice, "chat-two-people")


def test_a_room_with_three(web_env, people):
    carol = people.login("carol")
    dave = people.login("dave")
    erin = people.login("erin", width=360, height=740)
    for p in (carol, dave, erin):
        p.wait(conv("r:lab"))
    carol.open_conv("r:lab")
    carol.send("morning, lab")
    dave.open_conv("r:lab")
    dave.wait_body("morning, lab")
    dave.send("morning carol")
    erin.open_conv("r:lab")
    erin.wait_body("morning carol")
    erin.send("hello both")
    want = ["morning, lab", "morning carol", "hello both"]
    for p in (carol, dave, erin):
        p.wait_body("hello both")
        p.wait_bodies(want)
    # Authors are named in a room (others' messages at least).
    sel = carol.msg_with("morning carol")
    assert carol.attr(sel, "data-from") == "dave"
    assert "dave" in carol.text(sel + " .msg-author").lower()
    assert carol.text("#chat-title").strip() != ""
    people.shot(erin, "room-three-360")


def test_one_goes_offline_and_catches_up(web_env, people):
    fred = people.login("fred")
    gina = people.login("gina")
    gina.open_conv("u:fred")
    gina.send("before you left")
    fred.wait_text(conv("u:gina") + " .conv-last", "before you left")
    # Fred closes the page (his context keeps the session and token).
    people.close(fred)
    for i in range(1, 4):
        gina.send("while away %d" % i)
    for i in range(1, 4):
        gina.wait_body("while away %d" % i)
    gina.wait_fn("[...document.querySelectorAll('#messages .msg.mine .msg-status')]"
                 ".every(s => s.dataset.status !== 'pending')")
    # He comes back: token login, the list says 4 unread, in order.
    fred = people.open("fred2", ctx="fred")
    fred.wait_online()
    fred.wait_text(conv("u:gina") + " .conv-last", "while away 3")
    fred.wait_fn("(() => { const b = document.querySelector(%s);"
                 " return !!b && !b.hidden && b.textContent.trim() === '4'; })()"
                 % json.dumps(conv("u:gina") + " .conv-badge"))
    fred.click(conv("u:gina") + " .conv-name")
    fred.wait_bodies(["before you left", "while away 1", "while away 2", "while away 3"])
    # Gina's marks reach read once he has looked.
    gina.wait_fn("[...document.querySelectorAll('#messages .msg.mine .msg-status')]"
                 ".every(s => s.dataset.status === 'read')")


def test_an_edit_and_a_delete_reach_the_other_browser(web_env, people):
    hugo = people.login("hugo")
    ines = people.login("ines")
    hugo.open_conv("u:ines")
    hugo.send("the meeting is at 10")
    hugo.send("ignore this one")
    ines.open_conv("u:hugo")
    ines.wait_body("ignore this one")

    # Edit: menu, edit, the text in the composer, change it, Enter.
    hugo.action("the meeting is at 10", "edit")
    hugo.wait("#composer[data-mode=edit]")
    assert hugo.js("document.querySelector('#composer').value") == "the meeting is at 10"
    hugo.fill("#composer", "the meeting is at 11")
    hugo.press("Enter", sel="#composer")
    hugo.wait_body("the meeting is at 11")
    ines.wait_body("the meeting is at 11")
    sel = ines.msg_with("the meeting is at 11")
    ines.wait(sel + " .msg-edited")
    assert hugo.js("document.querySelector('#composer').dataset.mode || ''") != "edit"

    # Delete.
    sel_h = hugo.msg_with("ignore this one")
    mid = hugo.attr(sel_h, "data-id")
    hugo.click(sel_h + " .msg-menu")
    hugo.click(".msg-actions [data-action=delete]")
    for p in (hugo, ines):
        s = ".msg[data-id=%s]" % json.dumps(mid)
        p.wait_fn("(() => { const m = document.querySelector(%s);"
                  " return !!m && m.classList.contains('deleted'); })()" % json.dumps(s))
        assert p.text(s + " .msg-body") == "This message was deleted"
        assert "ignore this one" not in p.text("#messages")
    # Ines cannot edit or delete hugo's message.
    ines.click(ines.msg_with("the meeting is at 11") + " .msg-menu")
    ines.wait(".msg-actions")
    assert ines.count(".msg-actions [data-action=edit]") == 0
    assert ines.count(".msg-actions [data-action=delete]") == 0
    ines.press("Escape")
    # Both survive a reload (from the archive).
    ines.reload()
    ines.wait_online()
    ines.wait_body("the meeting is at 11")
    ines.wait("#messages .msg.deleted")


def test_delivered_and_read_marks(web_env, people):
    jon = people.login("jon")
    kim = people.login("kim")
    jon.open_conv("u:kim")
    jon.send("did you get this?")
    sel = jon.msg_with("did you get this?")
    # Kim is online on her list: delivered, not read.
    jon.wait(sel + " .msg-status[data-status=delivered]")
    kim.wait_text(conv("u:jon") + " .conv-last", "did you get this?")
    assert jon.attr(sel + " .msg-status", "data-status") == "delivered"
    kim.click(conv("u:jon") + " .conv-name")
    kim.wait_body("did you get this?")
    jon.wait(sel + " .msg-status[data-status=read]")
    # Kim's own message has no mark on Jon's side (only his own do).
    kim.send("yes")
    jon.wait_body("yes")
    assert jon.count(jon.msg_with("yes") + " .msg-status") == 0
    kim.wait(kim.msg_with("yes") + " .msg-status[data-status=read]")


def test_typing_is_shown(web_env, people):
    lea = people.login("lea")
    max_ = people.login("max")
    lea.open_conv("u:max")
    max_.open_conv("u:lea")
    assert (max_.text("#chat-typing") or "").strip() == ""
    lea.type("#composer", "I am writ")
    max_.wait_text("#chat-typing", "typing")
    assert "lea" in max_.text("#chat-typing").lower()
    lea.type("#composer", "ing a long answer")
    lea.press("Enter", sel="#composer")
    max_.wait_body("I am writing a long answer")
    max_.wait_fn("(document.querySelector('#chat-typing').textContent || '').trim() === ''")


def test_reply_and_react(web_env, people):
    nia = people.login("nia")
    olaf = people.login("olaf")
    nia.open_conv("u:olaf")
    nia.send("lunch at noon?")
    olaf.open_conv("u:nia")
    olaf.action("lunch at noon?", "reply")
    olaf.wait("#reply-bar")
    assert "lunch at noon?" in olaf.text("#reply-bar")
    olaf.fill("#composer", "yes, the usual place")
    olaf.press("Enter", sel="#composer")
    olaf.wait_gone("#reply-bar")
    for p in (nia, olaf):
        sel = p.msg_with("yes, the usual place")
        p.wait_text(sel + " .msg-reply", "lunch at noon?")

    # Nia reacts to the answer; Olaf sees it with its count.
    nia.action("yes, the usual place", "react")
    nia.click(".react-pick[data-emoji='\U0001F44D']")
    for p in (nia, olaf):
        sel = p.msg_with("yes, the usual place") + " .reaction[data-emoji='\U0001F44D']"
        p.wait_text(sel, "1")
    # The reply quote cancels with #reply-cancel.
    olaf.action("lunch at noon?", "reply")
    olaf.wait("#reply-bar")
    olaf.click("#reply-cancel")
    olaf.wait_gone("#reply-bar")


def test_search_finds_a_message(web_env, people):
    pia = people.login("pia")
    quin = people.login("quin")
    quin.open_conv("u:pia")
    quin.send("the zebrafish arrived on tuesday")
    quin.send("something else")
    pia.wait_text(conv("u:quin") + " .conv-last", "something else")
    pia.click("#open-search")
    pia.wait("#search-input")
    # The archive indexes within a bounded lag: ask again until it answers.
    hit = ".search-hit[data-conv='u:quin']"
    for attempt in range(int(T / 2)):
        pia.type("#search-input", "zebrafish", clear=True)
        pia.press("Enter", sel="#search-input")
        try:
            pia.wait(hit, timeout=2)
            break
        except AssertionError:
            continue
    pia.wait(hit, timeout=1)
    assert "zebrafish" in pia.text(hit)
    assert pia.count(".search-hit") == 1
    pia.click(hit)
    pia.wait("#chat[data-conv='u:quin']")
    pia.wait_body("the zebrafish arrived on tuesday")


def tab_to(p, js_pred, what, limit=40):
    """Press Tab until the focused element satisfies js_pred (a function
    of the element, in JS); bounded."""
    for _ in range(limit):
        if p.js("(%s)(document.activeElement)" % js_pred):
            return
        p.press("Tab")
    raise AssertionError("%s: %s not reached in %d Tabs (focus on %s)" % (
        p.name, what, limit, p.js("document.activeElement && document.activeElement.outerHTML.slice(0, 120)")))


def test_the_keyboard_alone(web_env, people):
    # Tom writes first (over plain MQTT), so Sol's list has him.
    import harness
    web_env.wait_login("tom")
    c = harness.Client(web_env.broker.port, "tom", "password-xxxx", client_id="tom@kb")
    assert c.connect() == 0
    c.publish("chat/inbox/sol/tom", harness.envelope("knock knock"))
    c.close()

    sol = people.open("sol")
    sol.wait("#login-form")
    tab_to(sol, "e => e && e.id === 'login-user'", "#login-user")
    sol.d.call("type", page="sol", text="sol")
    sol.press("Tab")
    assert sol.js("document.activeElement.id") == "login-password"
    sol.d.call("type", page="sol", text="password-xxxx")
    sol.press("Enter")
    sol.wait_online()
    # To the conversation in the list, and open it with Enter.
    sol.wait(conv("u:tom"))
    tab_to(sol, "e => !!e && !!e.closest && !!e.closest(%s)" % json.dumps(conv("u:tom")), "the conversation with tom")
    # The focus is visible (an outline or a ring).
    assert sol.js("(() => { const s = getComputedStyle(document.activeElement);"
                  " return s.outlineStyle !== 'none' && s.outlineWidth !== '0px' || s.boxShadow !== 'none'; })()")
    sol.press("Enter")
    sol.wait("#chat[data-conv='u:tom']")
    sol.wait_body("knock knock")
    tab_to(sol, "e => e && e.id === 'composer'", "#composer")
    # Shift+Enter is a new line, Enter sends.
    sol.d.call("type", page="sol", text="who is there")
    sol.press("Enter", modifiers=["Shift"])
    sol.d.call("type", page="sol", text="(a second line)")
    sol.press("Enter")
    sol.wait_body("who is there\n(a second line)")
    assert sol.js("document.querySelector('#composer').value") == ""
    # A message's menu opens from the keyboard and Escape closes it.
    sel = sol.msg_with("knock knock") + " .msg-menu"
    sol.focus(sel=sel)
    sol.press("Enter")
    sol.wait(".msg-actions")
    sol.press("Escape")
    sol.wait_gone(".msg-actions")
