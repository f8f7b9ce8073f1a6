"""test_web_account.py - the web app's account side: register, log out,
block, devices.

Registration is open on this module's stack (as in the `make run` demo).
"""
import json

from harness import wait_for
from web_util import T, driver, people, stack_fixture  # noqa: F401 (fixtures)

web_env = stack_fixture(registration="open",
                        users=["wes", "abe", "xena", "yuri", "zoe", "ann", "bo"],
                        rooms={"blk": ["xena", "yuri", "zoe"]})


def test_register_in_the_app(web_env, people):
    p = people.open("newcomer")
    p.wait("#login-form")
    p.click("#show-register")
    p.wait("#register-form")
    p.type("#reg-user", "nadia")
    p.type("#reg-password", "nadias-password-1")
    p.type("#reg-nick", "Nadia K")
    p.click("#reg-submit")
    p.wait_online()
    p.wait_text("#me", "Nadia K")
    s = p.session()
    assert s["user"] == "nadia" and s["token"].startswith("mqt1."), s
    assert "nadias-password-1" not in p.js("JSON.stringify(Object.assign({}, localStorage))")
    # The account works from another app at once, and the name is taken now.
    assert web_env.login_code("nadia", "nadias-password-1", "nadia") == 0
    other = people.open("latecomer")
    other.click("#show-register")
    other.fill("#reg-user", "nadia")
    other.fill("#reg-password", "another-password-1")
    other.click("#reg-submit")
    other.wait_fn("(document.querySelector('#reg-error').textContent || '').trim() !== ''")
    people.shot(other, "register-taken")


def test_log_out_revokes_the_token(web_env, people):
    wes = people.login("wes", width=360, height=740)
    s = wes.session()
    wes.click("#open-settings")
    wes.wait("#settings")
    wes.click("#logout")
    wes.wait("#login-form")
    assert wes.session() is None
    # The token is refused from now on (the plugin reloads within a second).
    wait_for(lambda: web_env.login_code("wes", s["token"], "wes@" + s["device"]) != 0, T, interval=0.2,
             what="the revoked token to be refused")
    # The password still logs in, with a new token.
    wes.login("wes")
    wes.wait_fn("!!localStorage.getItem('mqchat.session')")
    s2 = wes.session()
    assert s2["token"] != s["token"]


def test_block_hides_messages(web_env, people):
    xena = people.login("xena")
    yuri = people.login("yuri")
    zoe = people.login("zoe")
    yuri.open_conv("r:blk")
    yuri.send("before the block")
    xena.open_conv("r:blk")
    xena.wait_body("before the block")

    xena.click("#open-settings")
    xena.wait("#settings")
    xena.fill("#block-user", "yuri")
    xena.click("#block-go")
    xena.wait(".blocked[data-user=yuri]")

    yuri.send("after the block")
    zoe.open_conv("r:blk")
    zoe.wait_body("after the block")
    zoe.send("zoe after the block")
    xena.open_conv("r:blk")
    xena.wait_body("zoe after the block")
    shown = xena.bodies()
    assert "after the block" not in shown, shown
    assert "before the block" not in shown, shown
    assert xena.count("#messages .msg[data-from=yuri]") == 0

    # A direct message from yuri to xena is refused by the broker: marked failed.
    yuri.open_conv("u:xena")
    yuri.send("let me talk to you")
    yuri.wait(yuri.msg_with("let me talk to you") + " .msg-status[data-status=failed]")

    # Unblock: yuri's room messages come back.
    xena.click("#open-settings")
    xena.click(".blocked[data-user=yuri] .unblock")
    xena.wait_gone(".blocked[data-user=yuri]")
    yuri.open_conv("r:blk")
    yuri.send("after the unblock")
    xena.open_conv("r:blk")
    xena.wait_body("after the unblock")


def test_blocked_list_follows_an_unblock_made_while_the_panel_was_replaced(web_env, people):
    """The settings panel is opened again while an unblock from the panel
    before it is on its way: the new panel asked for the list before that
    unblock, yet ends without the person (the list is the store's, which
    takes the unblock's answer and not an older `blocked` one)."""
    ann = people.login("ann")
    people.login("bo")
    ann.click("#open-settings")
    ann.wait("#settings")
    ann.fill("#block-user", "bo")
    ann.click("#block-go")
    ann.wait(".blocked[data-user=bo]")
    ann.js("""(async () => {
        const old = document.getElementById('settings');
        const button = old.querySelector('.blocked[data-user=bo] .unblock');
        location.hash = '#/';
        for (let i = 0; i < 200 && document.getElementById('settings'); i++)
            await new Promise((r) => setTimeout(r, 10));
        location.hash = '#/settings';
        for (let i = 0; i < 200; i++) {
            const now = document.getElementById('settings');
            if (now && now !== old) break;
            await new Promise((r) => setTimeout(r, 10));
        }
        button.click();   // the replaced panel's button: its unblock goes out now
    })()""")
    # The new panel drew its list (the empty-list line shows only then)
    # and bo is not on it.
    ann.wait_fn("document.querySelector('#settings #blocks-empty') && "
                "!document.querySelector('#settings #blocks-empty').hidden && "
                "document.querySelectorAll('#settings .blocked').length === 0")


def test_devices_panel_lists_and_logs_out_the_others(web_env, people):
    people.allow(r"WebSocket connection to .* failed")
    laptop = people.login("abe", name="abe-laptop", ctx="abe-laptop")
    phone = people.login("abe", name="abe-phone", ctx="abe-phone", width=360, height=740)
    sl, sp = laptop.session(), phone.session()
    assert sl["device"] != sp["device"]
    laptop.click("#open-settings")
    laptop.wait("#devices .device")
    laptop.wait_fn("document.querySelectorAll('#devices .device').length === 2")
    devs = laptop.js("[...document.querySelectorAll('#devices .device')].map("
                     "d => [d.dataset.device, d.classList.contains('current')])")
    assert sorted(devs) == sorted([[sl["device"], True], [sp["device"], False]]), devs
    people.shot(laptop, "settings-devices")

    laptop.click("#logout-others")
    laptop.confirm()
    laptop.wait_fn("document.querySelectorAll('#devices .device').length === 1")
    assert laptop.attr("#devices .device", "data-device") == sl["device"]
    # The phone's token is refused from now on, and the phone, whose
    # connection the broker closes, is sent back to the login form.
    wait_for(lambda: web_env.store.sql("SELECT count(*) FROM devices WHERE user='abe' AND device=?", sp["device"])[0][0] == 0,
             T, interval=0.2, what="the phone's token to be gone")
    phone.wait("#login-form", timeout=T)
    assert web_env.login_code("abe", sp["token"], "abe@" + sp["device"]) != 0
    # (The laptop's own token is not tried here: a second connection with
    # its client id would take its session over.)
    laptop.wait_online()
    assert json.dumps(laptop.session()) == json.dumps(sl)
