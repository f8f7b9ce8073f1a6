"""test_web_safety.py - text from other people stays text in the web app.

Bodies, a nick and a room title made of markup, script, javascript: links,
a right-to-left override and a 64 KiB body are sent through the app and
shown in another browser: no element is made from them, nothing of them
runs (window.__pwned stays unset, no CSP violation is logged, which
web_util fails the test on), and each shows literally.
"""
import json

import pytest

from web_util import T, driver, people, stack_fixture  # noqa: F401 (fixtures)

NICK = '<img src=x onerror="window.__pwned=4">'
TITLE = '<script>window.__pwned=5</script><b>Den</b>'
BODIES = [
    '<img src=x onerror="window.__pwned=1">',
    '<script>window.__pwned=2</script>',
    'javascript:window.__pwned=3',
    '<a href="javascript:window.__pwned=6">click me</a>',
    '[link](javascript:window.__pwned=7) <iframe src="javascript:window.__pwned=8"></iframe>',
    'file\u202egnp.exe\u202c and \u2066isolated\u2069 text',
    '<style>body{display:none}</style>&lt;b&gt; &amp; <svg onload="window.__pwned=9"/>',
]
# Just under the 64 KiB the plugin takes for a whole envelope (its id, type
# and ts take the rest).
BIG = "<b>" + "big " * 16200 + "</b>"

web_env = stack_fixture(users=["rita", "sam"], rooms={"den": ["rita", "sam"]})


@pytest.fixture(scope="module", autouse=True)
def hostile_names(web_env):
    web_env.store.sql("UPDATE users SET nick=? WHERE name='rita'", NICK)
    web_env.store.sql("INSERT INTO room_meta(room, owner, title) VALUES('den', NULL, ?)", TITLE)
    # The plugin and the archiver read auth.db again within a second.
    web_env.wait_login("rita")


# Nothing made from foreign text: no element with an on* attribute, no
# javascript: URL, no script/iframe/img/svg/style in the app's body.
INERT = """(() => {
  const bad = [];
  for (const e of document.body.querySelectorAll('*')) {
    for (const a of e.attributes) {
      if (/^on/i.test(a.name)) bad.push(e.tagName + ' ' + a.name);
      if (/^\\s*javascript:/i.test(a.value)) bad.push(e.tagName + ' ' + a.name + '=' + a.value);
    }
  }
  for (const e of document.body.querySelectorAll('script, iframe, object, embed, img[src="x"]')) {
    bad.push('element ' + e.tagName);
  }
  for (const e of document.body.querySelectorAll('b, style, a')) {
    const t = e.textContent;
    if (t === 'Den' || t.startsWith('big big') || t === 'click me' || t.includes('display:none')) {
      bad.push('element ' + e.tagName + ' from foreign text');
    }
  }
  if (window.__pwned !== undefined) bad.push('ran: ' + window.__pwned);
  if (window.__cspViolations.length) bad.push('csp: ' + window.__cspViolations.join('; '));
  if (getComputedStyle(document.body).display === 'none') bad.push('body hidden');
  return bad;
})()"""


def test_hostile_bodies_nicks_and_titles_stay_text(web_env, people):
    rita = people.login("rita")
    sam = people.login("sam")
    sam.wait(".conv[data-conv='r:den']")
    rita.open_conv("r:den")
    for b in BODIES:
        rita.send(b)
        rita.wait_body(b)
    rita.fill("#composer", BIG)
    rita.press("Enter", sel="#composer")
    rita.wait_fn("[...document.querySelectorAll('#messages .msg-body')].some(b => b.textContent.length === %d)"
                 % len(BIG))
    # Rita's own messages reached the broker (not failed, not refused as too big).
    rita.wait_fn("[...document.querySelectorAll('#messages .msg.mine')].length === %d" % (len(BODIES) + 1))

    sam.open_conv("r:den")
    sam.wait_fn("[...document.querySelectorAll('#messages .msg-body')].some(b => b.textContent === %s)"
                % json.dumps(BIG), timeout=T)
    for b in BODIES:
        sam.wait_body(b)
    sam.wait_bodies(BODIES + [BIG])
    # The title and the author's nick: literal, wherever they show.
    assert sam.text("#chat-title").strip() in (TITLE, "den", "#den")
    assert TITLE in sam.text(".conv[data-conv='r:den'] .conv-name") or "den" in sam.text(
        ".conv[data-conv='r:den'] .conv-name")
    author = sam.text(sam.msg_with(BODIES[0]) + " .msg-author")
    assert author is not None and (NICK in author or "rita" in author), author
    for p in (rita, sam):
        assert p.js(INERT) == [], p.name
    people.shot(sam, "hostile-text")

    # History from the archive (a reload) is as inert: bodies come back
    # from history pages, not only live.
    sam.reload()
    sam.wait_online()
    sam.wait("#chat[data-conv='r:den'] #messages .msg")
    sam.load_all()
    for b in BODIES:
        sam.wait_body(b)
    assert sam.js(INERT) == []
