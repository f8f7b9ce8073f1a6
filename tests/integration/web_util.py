"""web_util.py - the web app in headless Chromium against a real broker,
plugin and archiver.

    from web_util import driver, web_env, people  # noqa: F401 (fixtures)

    def test_x(web_env, people):
        alice = people.login("alice")          # a browser context, logged in
        bob = people.login("bob", width=360, height=740)
        alice.open_chat("u:bob")
        alice.send("hi bob")
        bob.wait_text(".conv[data-conv='u:alice'] .conv-last", "hi bob")

The driver (tests/web/driver.mjs) is one Node process per pytest worker,
driving one Chromium; every person gets a browser context of their own
(own localStorage: own device, own token). Its npm dependency
(puppeteer-core, pinned in tests/web/package.json and package-lock.json)
is installed here with `npm ci` into tests/web/node_modules when missing.
The tests skip only when Chromium (Debian's `chromium`, `make deps`) or
node/npm is not installed.

web_env is one stack per test module: mosquitto with the plugin, a plain
listener and a WebSockets one (`listener N lo`, as config/mosquitto.conf),
and the archiver serving $(BUILD)/web over HTTP (--http-port, --web-dir,
--web-mqtt-url). Users are added with harness.Store before the broker
starts, or later with Stack.add_users (which waits until the plugin lets
them in).

Every page's console errors, uncaught exceptions, failed requests and CSP
violations fail the test that caused them (people checks at the end of
each test), but for what the test declared expected with people.allow().

Screenshots go to the test's tmp dir; with MQCHAT_SCREENSHOTS=dir (for
instance docs/screenshots) the ones named for the README are copied there.
"""
import fcntl
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

import harness
from archiver_util import Archiver, rows

WEB_TESTS = os.path.join(harness.ROOT, "tests", "web")
DRIVER = os.path.join(WEB_TESTS, "driver.mjs")
WEB_DIR = os.environ.get("MQCHAT_WEB_DIR") or os.path.join(harness.BUILD, "web")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node")
NPM = shutil.which("npm")
PASSWORD = "password-xxxx"       # harness.Store.add_user's default
SHOTS = os.environ.get("MQCHAT_SCREENSHOTS")
# Every screenshot (failures' too) also kept in <dir>/<test name>/: pytest
# removes old tmp dirs, and other runs on the machine make new ones.
KEEP = os.environ.get("MQCHAT_WEB_ARTIFACTS")
TRACE = os.environ.get("MQCHAT_WEB_TRACE") == "1"   # every driver command and its time

# Under load (2 cores, four pytest workers) a step of the app can take a
# while; every wait is bounded by this unless the test says otherwise.
T = 20.0

# Not the app's: Chromium asks for /favicon.ico when a page has no icon.
ALWAYS_ALLOWED = [r"/favicon\.ico"]


def skip_reason():
    if not os.path.exists(CHROMIUM):
        return "chromium is not installed (%s; make deps installs it)" % CHROMIUM
    if NODE is None or NPM is None:
        return "node and npm are not installed"
    return None


def npm_ci():
    """Install tests/web/node_modules from the lock file when missing or
    older than the lock file; one installer at a time (pytest workers)."""
    mods = os.path.join(WEB_TESTS, "node_modules")
    lock = os.path.join(WEB_TESTS, "package-lock.json")
    stamp = os.path.join(mods, ".package-lock.json")

    def fresh():
        return (os.path.isdir(os.path.join(mods, "puppeteer-core")) and os.path.exists(stamp)
                and os.path.getmtime(stamp) >= os.path.getmtime(lock))
    if fresh():
        return
    with open(os.path.join(harness.tempfile.gettempdir(), "mqchat-web-npm.lock"), "w") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        try:
            if fresh():
                return
            p = subprocess.run([NPM, "ci", "--no-audit", "--no-fund"], cwd=WEB_TESTS,
                               capture_output=True, timeout=600)
            assert p.returncode == 0, "npm ci in tests/web failed:\n%s%s" % (
                p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))
        finally:
            fcntl.flock(lf, fcntl.LOCK_UN)


class DriverError(AssertionError):
    pass


class Driver:
    """The driver process: call(cmd, **args) -> value, or DriverError."""

    def __init__(self):
        self.proc = subprocess.Popen([NODE, DRIVER, "--chromium", CHROMIUM], cwd=WEB_TESTS,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.answers = queue.Queue()
        self.stderr_lines = []
        self.next_id = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        ev = self._get(60, "the driver to start Chromium")
        if ev.get("event") != "ready":
            raise DriverError("driver failed to start: %r\n%s" % (ev, self.stderr()))
        self.version = ev.get("version")

    def _read(self):
        for line in iter(self.proc.stdout.readline, b""):
            try:
                self.answers.put(json.loads(line))
            except ValueError:
                self.stderr_lines.append("stdout: " + line.decode(errors="replace"))
        self.answers.put({"event": "eof"})

    def _read_err(self):
        for line in iter(self.proc.stderr.readline, b""):
            self.stderr_lines.append(line.decode(errors="replace"))
            del self.stderr_lines[:-200]

    def stderr(self):
        return "".join(self.stderr_lines[-50:])

    def _get(self, timeout, what):
        try:
            return self.answers.get(timeout=timeout)
        except queue.Empty:
            raise DriverError("no answer from the driver within %.0fs for %s" % (timeout, what))

    def call(self, cmd, timeout=None, **args):
        """Run one command; the answer's value. timeout (s) bounds the
        command's own wait, and this call waits that plus a margin."""
        t0 = time.monotonic()
        with self.lock:
            self.next_id += 1
            cid = self.next_id
            msg = dict(args, id=cid, cmd=cmd)
            if timeout is not None:
                msg["timeout"] = int(timeout * 1000)
            if self.proc.poll() is not None:
                raise DriverError("the driver exited (%s):\n%s" % (self.proc.returncode, self.stderr()))
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            self.proc.stdin.flush()
            deadline = time.monotonic() + (timeout or T) + 30
            while True:
                ans = self._get(max(0.1, deadline - time.monotonic()), "%s %r" % (cmd, args))
                if ans.get("id") == cid:
                    break
                if ans.get("event") in ("eof", "browser-gone", "error"):
                    raise DriverError("the driver stopped: %r\n%s" % (ans, self.stderr()))
        if TRACE:
            print("%8.3f %6.0f ms %s %s" % (time.monotonic() % 1000, (time.monotonic() - t0) * 1000, cmd,
                                           json.dumps(args)[:150]), flush=True)
        if not ans.get("ok"):
            raise DriverError("%s %s: %s" % (cmd, json.dumps(args)[:300], ans.get("error")))
        return ans.get("value")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("quit", timeout=5)
            except (DriverError, OSError):
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                # Its own process group (start_new_session): Chromium's too.
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Page:
    """One page of one person, with the steps the tests take."""

    def __init__(self, drv, name, base, user=None, password=None):
        self.d = drv
        self.name = name
        self.base = base
        self.user = user
        self.password = password

    def __getattr__(self, cmd):
        # page.waitFor(sel=...) etc.: any driver command on this page.
        if cmd.startswith("_"):
            raise AttributeError(cmd)
        return lambda **kw: self.d.call(cmd, page=self.name, **kw)

    # Conditions (bounded by T unless told).
    def wait(self, sel, timeout=T, **kw):
        return self.d.call("waitFor", page=self.name, sel=sel, timeout=timeout, **kw)

    def wait_text(self, sel, text, timeout=T):
        return self.d.call("waitFor", page=self.name, sel=sel, text=text, timeout=timeout)

    def wait_fn(self, js, timeout=T):
        return self.d.call("waitFor", page=self.name, fn=js, timeout=timeout)

    def wait_gone(self, sel, timeout=T):
        return self.d.call("waitFor", page=self.name, sel=sel, hidden=True, timeout=timeout)

    def js(self, js):
        return self.d.call("eval", page=self.name, js=js)

    def text(self, sel):
        return self.d.call("text", page=self.name, sel=sel)

    def texts(self, sel):
        return self.d.call("texts", page=self.name, sel=sel)

    def count(self, sel):
        return self.d.call("count", page=self.name, sel=sel)

    def attr(self, sel, name):
        return self.d.call("attr", page=self.name, sel=sel, name=name)

    def click(self, sel, timeout=T):
        return self.d.call("click", page=self.name, sel=sel, timeout=timeout)

    def type(self, sel, text, clear=False):
        return self.d.call("type", page=self.name, sel=sel, text=text, clear=clear)

    def fill(self, sel, text):
        return self.d.call("fill", page=self.name, sel=sel, text=text)

    def press(self, key, sel=None, modifiers=None):
        kw = {"key": key}
        if sel:
            kw["sel"] = sel
        if modifiers:
            kw["modifiers"] = modifiers
        return self.d.call("press", page=self.name, **kw)

    def goto(self, hash_or_url="", timeout=T):
        url = hash_or_url if hash_or_url.startswith("http") else self.base + hash_or_url
        return self.d.call("goto", page=self.name, url=url, timeout=timeout)

    def reload(self, timeout=T):
        return self.d.call("reload", page=self.name, timeout=timeout)

    def state(self):
        return self.attr("#status", "data-state")

    def wait_online(self, timeout=T):
        return self.wait_fn("(() => { const s = document.querySelector('#status');"
                            " return !!s && s.dataset.state === 'online'; })()", timeout)

    def session(self):
        """The stored session {user, device, token} (localStorage), or None."""
        return self.js("JSON.parse(localStorage.getItem('mqchat.session') || 'null')")

    # The app's steps.
    def login(self, user, password=PASSWORD):
        self.user, self.password = user, password
        self.wait("#login-form")
        # Filled at once, as a password manager does (typing key by key
        # costs ~40 ms a character on a loaded machine).
        self.fill("#login-user", user)
        self.fill("#login-password", password)
        self.click("#login-submit")
        self.wait_online()
        self.wait("#convs", visible=False)

    def open_conv(self, key):
        """Open a conversation by its hash route (u:bob -> #/u/bob)."""
        kind, name = key.split(":", 1)
        self.js("location.hash = %s" % json.dumps("#/%s/%s" % (kind, name)))
        self.wait_fn("(() => { const c = document.querySelector('#chat');"
                     " return !!c && c.dataset.conv === %s; })()" % json.dumps(key))
        self.wait("#composer")

    def send(self, text, typed=False):
        """Put a message in the composer (typed key by key if typed) and
        press Enter."""
        if typed:
            self.type("#composer", text)
        else:
            self.fill("#composer", text)
        self.press("Enter", sel="#composer")

    def msg_sel(self, body=None, mid=None):
        if mid:
            return ".msg[data-id=%s]" % json.dumps(mid)
        raise ValueError("by id only")

    def bodies(self):
        """The texts shown in the open conversation, in display order."""
        return self.texts("#messages .msg:not(.event) .msg-body")

    def wait_body(self, body, timeout=T):
        """Wait until a message with exactly this body shows; return its id."""
        return self.wait_fn(
            "(() => { for (const m of document.querySelectorAll('#messages .msg')) {"
            " const b = m.querySelector('.msg-body');"
            " if (b && b.textContent === %s) return m.dataset.id || true; } return false; })()"
            % json.dumps(body), timeout)

    def wait_bodies(self, want, timeout=T):
        """Wait until the open conversation shows exactly these texts, in
        this order (history pages may come after live messages)."""
        try:
            self.wait_fn("JSON.stringify([...document.querySelectorAll('#messages .msg:not(.event) .msg-body')]"
                         ".map(b => b.textContent)) === %s" % json.dumps(json.dumps(want, separators=(",", ":"), ensure_ascii=False)),
                         timeout)
        except DriverError:
            raise AssertionError("%s shows %r, not %r" % (self.name, self.bodies(), want))

    def load_all(self, timeout=T):
        """Scroll the conversation to its top until every history page is
        loaded (#messages[data-more=false])."""
        self.wait("#messages[data-more]", visible=False, timeout=timeout)
        self.wait_fn("(() => { const m = document.querySelector('#messages'); m.scrollTop = 0;"
                     " return m.dataset.more === 'false'; })()", timeout)

    def confirm(self, timeout=T):
        """Accept the app's confirmation dialog (#confirm-dialog)."""
        self.click("#confirm-dialog #confirm-ok", timeout=timeout)
        self.wait_gone("#confirm-dialog", timeout=timeout)

    def msg_with(self, body):
        """The selector of the message whose body is exactly body (by its id)."""
        mid = self.wait_body(body)
        return ".msg[data-id=%s]" % json.dumps(mid)

    def action(self, body, action):
        """Open a message's menu and pick an action (reply, react, ...)."""
        sel = self.msg_with(body)
        self.click(sel + " .msg-menu")
        self.click(".msg-actions [data-action=%s]" % action)
        return sel

    def shot(self, path):
        return self.d.call("screenshot", page=self.name, path=path)


class People:
    """The browser contexts of one test: opened, logged in, closed; the
    errors their pages logged checked at the end."""

    def __init__(self, drv, stack, shotdir, test=""):
        self.d = drv
        self.test = re.sub(r"[^A-Za-z0-9_.-]", "_", test)
        self.stack = stack
        self.shotdir = shotdir
        self.ctxs = []
        self.pages = []
        self.allowed = list(ALWAYS_ALLOWED)
        self.n = 0
        self.d.call("errors", clear=True)   # nothing left from an earlier test

    def allow(self, pattern):
        """An error text (regex) this test expects (e.g. a refused WebSocket)."""
        self.allowed.append(pattern)

    def open(self, name, ctx=None, width=1280, height=800, dark=False, hash="", user=None):
        """A new page (and context ctx, default name) at the app's URL."""
        self.n += 1
        ctx = ctx or name
        if ctx not in self.ctxs:
            self.ctxs.append(ctx)
        self.d.call("open", page=name, ctx=ctx, url=self.stack.url + hash, width=width,
                    height=height, dark=dark, timeout=T)
        p = Page(self.d, name, self.stack.url, user=user)
        self.pages.append(name)
        return p

    def login(self, user, password=PASSWORD, name=None, ctx=None, **kw):
        p = self.open(name or user, ctx=ctx, user=user, **kw)
        p.login(user, password)
        return p

    def close(self, page):
        name = page.name if isinstance(page, Page) else page
        self.d.call("close", page=name)
        if name in self.pages:
            self.pages.remove(name)

    def shot(self, page, name, readme=False):
        """Save a screenshot as <tmp>/<name>.png (and in MQCHAT_SCREENSHOTS
        when readme)."""
        path = os.path.join(self.shotdir, name + ".png")
        page.shot(path)
        self.keep(path)
        if readme and SHOTS:
            dest = SHOTS if os.path.isabs(SHOTS) else os.path.join(harness.ROOT, SHOTS)
            os.makedirs(dest, exist_ok=True)
            shutil.copyfile(path, os.path.join(dest, name + ".png"))
        return path

    def keep(self, path):
        if KEEP:
            d = os.path.join(KEEP, self.test)
            os.makedirs(d, exist_ok=True)
            shutil.copyfile(path, os.path.join(d, os.path.basename(path)))

    def errors(self):
        errs = self.d.call("errors", clear=True)
        return [e for e in errs
                if not any(re.search(a, e["text"] + " " + e.get("url", "")) for a in self.allowed)]

    def finish(self, failed):
        errs = self.errors()
        if failed:
            for p in list(self.pages):
                try:
                    path = os.path.join(self.shotdir, "fail-%s.png" % p)
                    self.d.call("screenshot", page=p, path=path)
                    self.keep(path)
                except DriverError:
                    pass
        for c in self.ctxs:
            try:
                self.d.call("closeCtx", ctx=c)
            except DriverError:
                pass
        return errs


class Stack:
    """Broker (plain + WebSockets listeners) + plugin + archiver serving the
    app over HTTP, in one data folder."""

    def __init__(self, registration="open", users=(), rooms=None, broker_kw=None, arch_args=()):
        if not os.path.isfile(os.path.join(WEB_DIR, "index.html")):
            raise AssertionError("%s/index.html is missing: make BUILD=%s web" % (
                WEB_DIR, os.path.basename(harness.BUILD)))
        self.datadir = harness.make_datadir()
        self.store = harness.Store(os.path.join(self.datadir, "auth.db"))
        for u in users:
            self.store.add_user(u)
        for r, members in (rooms or {}).items():
            self.store.add_room(r, members=members)
        self.pw = "svc-" + os.urandom(16).hex()
        self.store.add_user("archiver", password=self.pw, kind="service")
        fd = os.open(os.path.join(self.datadir, "archiver.pw"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.pw + "\n")
        self.ws_port = harness.free_port()
        self.http_port = harness.free_port()
        kw = dict(broker_kw or {})
        extra = kw.pop("extra_conf", "")
        self.broker = harness.Broker(self.datadir, registration=registration,
                                     extra_conf="listener %d lo\nprotocol websockets\n%s" % (self.ws_port, extra),
                                     **kw)
        self.url = "http://127.0.0.1:%d/" % self.http_port
        self.ws_url = "ws://127.0.0.1:%d" % self.ws_port
        self.arch = Archiver(self.datadir, self.broker.port, [
            "--registration", registration, "--http-port", str(self.http_port),
            "--web-dir", WEB_DIR, "--web-mqtt-url", self.ws_url] + list(arch_args))
        self.started = False

    def start(self):
        self.broker.start()
        self.wait_ws()
        self.arch.start()
        self.started = True
        harness.wait_for(self._http_up, T, interval=0.05, what="the archiver's HTTP server on %d" % self.http_port)
        return self

    def _http_up(self):
        try:
            with urllib.request.urlopen(self.url + "config.json", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def wait_ws(self):
        def up():
            try:
                with harness.socket.create_connection(("127.0.0.1", self.ws_port), timeout=0.2):
                    return True
            except OSError:
                return False
        harness.wait_for(up, T, what="the broker's WebSockets listener on %d" % self.ws_port)

    def add_users(self, *names, password=PASSWORD):
        """Add users now and wait until the plugin lets each in."""
        for n in names:
            self.store.add_user(n, password=password)
        for n in names:
            self.wait_login(n, password)

    def wait_login(self, user, password=PASSWORD):
        def ok():
            c = harness.Client(self.broker.port, user, password)
            try:
                return c.connect() == 0
            finally:
                c.close()
        harness.wait_for(ok, T, interval=0.2, what="the plugin to let %s in" % user)

    def login_code(self, user, password, client_id):
        """The CONNACK code of a plain MQTT login (0: accepted). Never with
        the client id of a connected app: it would take its session over."""
        c = harness.Client(self.broker.port, user, password, client_id=client_id)
        try:
            return c.connect()
        finally:
            c.close()

    def restart_broker(self):
        self.broker.stop()
        self.broker.start()
        self.wait_ws()

    def rows(self, sql, *args):
        return rows(self.datadir, sql, *args)

    def stop(self, failed=False):
        logs = ""
        try:
            self.arch.stop()
        finally:
            self.broker.stop()
        if failed:
            logs = "---- archiver log ----\n%s\n---- broker log ----\n%s" % (
                self.arch.output()[-8000:], self.broker.output()[-8000:])
        shutil.rmtree(self.datadir, ignore_errors=True)
        return logs


@pytest.fixture(scope="session")
def driver():
    why = skip_reason()
    if why:
        pytest.skip(why)
    npm_ci()
    d = Driver()
    yield d
    d.close()


def stack_fixture(**kw):
    """A module-scoped fixture of one Stack (users, rooms, registration)."""
    @pytest.fixture(scope="module")
    def fixture(request, driver):
        yield from harness.serve_stack(request, Stack(**kw))
    return fixture


web_env = stack_fixture()


@pytest.fixture
def people(request, driver, web_env, tmp_path):
    """The browser side of one test; fails it on any page error."""
    p = People(driver, web_env, str(tmp_path), request.node.name)
    yield p
    call = getattr(request.node, "rep_call", None)
    errs = p.finish(failed=call is not None and call.failed)
    print("screenshots in %s" % tmp_path)
    if errs and not (call is not None and call.failed):
        pytest.fail("the pages logged errors:\n" + describe(errs), pytrace=False)
    elif errs:
        print("page errors:\n" + describe(errs))


def describe(errs):
    return "\n".join("%s %s: %s%s" % (e["page"], e["kind"], e["text"],
                                      " (%s)" % e["url"] if e.get("url") else "") for e in errs)


def unique(prefix):
    """A fresh account name for one test in a shared stack."""
    unique.n += 1
    return "%s%d%s" % (prefix, unique.n, os.urandom(2).hex())


unique.n = 0
