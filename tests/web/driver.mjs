// driver.mjs - drives the web app in headless Chromium for the tests.
//
//   node driver.mjs [--chromium /usr/bin/chromium]
//
// One long-running process: it launches one browser, prints
// {"event":"ready","version":"..."} and then reads commands, one JSON object
// per line on stdin, and answers each with one line on stdout:
//   {"id":7,"cmd":"click","page":"alice","sel":"#send"}
//   -> {"id":7,"ok":true,"value":...}  or  {"id":7,"ok":false,"error":"..."}
// Commands run one after another, in order.
//
// Every person gets a browser context (its own localStorage, cookies,
// cache): "ctx" names it, by default the page's name. Pages are named by
// the caller ("alice", "bob2").
//
// Every page's console errors, uncaught exceptions, failed loads and
// Content-Security-Policy violations are collected; "errors" hands them
// over (the tests fail on any they did not expect).
import { createInterface } from 'node:readline';
import { launchChromium } from './chromium.mjs';

const args = process.argv.slice(2);
function arg(name, dflt) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
}

const CHROMIUM = arg('--chromium', process.env.CHROMIUM || '/usr/bin/chromium');

const contexts = new Map();   // name -> BrowserContext
const pages = new Map();      // name -> {page, ctx}
const errors = [];            // {page, kind, text}
const dialogs = [];           // {page, type, message}: alert/confirm/prompt seen
let browser = null;
let quitting = false;

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// Installed before any script of the page runs (in the page's main world,
// which CSP does not govern): CSP violations become console errors with a
// fixed prefix, and are kept in a list the tests can read.
const PRELUDE = `(() => {
  const seen = [];
  Object.defineProperty(window, '__cspViolations', {value: seen});
  document.addEventListener('securitypolicyviolation', (e) => {
    const s = 'CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || '(inline)') +
      ' at ' + (e.sourceFile || '') + ':' + (e.lineNumber || 0) + ' sample ' + (e.sample || '');
    seen.push(s);
    console.error(s);
  });
})();`;

function page(name) {
  const p = pages.get(name);
  if (!p) throw new Error('no page ' + JSON.stringify(name));
  return p.page;
}

async function context(name) {
  let c = contexts.get(name);
  if (!c) {
    c = await browser.createBrowserContext();
    contexts.set(name, c);
  }
  return c;
}

// A context with a blank page made ahead of time, while the test does
// something else: a new page costs a renderer process (0.2 s idle, several
// seconds on a loaded machine), the most expensive step of a test.
let spare = null;
function makeSpare() {
  spare = (async () => {
    const ctx = await browser.createBrowserContext();
    const page = await ctx.newPage();
    return { ctx, page };
  })();
  spare.catch(() => {});
}
async function takeSpare() {
  if (!spare) return null;
  const s = spare;
  spare = null;
  try {
    return await s;
  } catch (e) {
    return null;
  }
}

function watch(name, p) {
  p.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'assert') {
      const loc = m.location();
      errors.push({ page: name, kind: 'console', text: m.text(), url: loc && loc.url ? loc.url : '' });
    }
  });
  // A confirm() (delete, leave, log out): accepted, as a person who meant it.
  p.on('dialog', (d) => {
    dialogs.push({ page: name, type: d.type(), message: d.message() });
    d.accept().catch(() => {});
  });
  p.on('pageerror', (e) => {
    errors.push({ page: name, kind: 'exception', text: String(e && e.stack ? e.stack : e) });
  });
  p.on('requestfailed', (r) => {
    const f = r.failure();
    const why = f ? f.errorText : '';
    // A page closed or navigated away while loading: not the app's fault.
    if (why === 'net::ERR_ABORTED') return;
    errors.push({ page: name, kind: 'requestfailed', text: r.method() + ' ' + r.url() + ' ' + why });
  });
  p.on('response', (r) => {
    if (r.status() >= 400) {
      errors.push({ page: name, kind: 'http', text: r.status() + ' ' + r.url() });
    }
  });
}

async function setColors(p, dark) {
  await p.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: dark ? 'dark' : 'light' }]);
}

// Poll an expression (evaluated in the page) until it is truthy; returns
// its value. Polling from here, not inside the page: the app's CSP would
// refuse a page-side helper built from a string.
async function poll(p, expr, timeout, what) {
  const deadline = Date.now() + timeout;
  let last = null;
  for (;;) {
    try {
      const v = await p.evaluate(expr);
      if (v) return v;
      last = null;
    } catch (e) {
      // Navigation in progress: the context is gone for a moment.
      last = e;
    }
    if (Date.now() >= deadline) {
      throw new Error('timed out after ' + timeout + ' ms waiting for ' + what +
                      (last ? ' (last error: ' + last.message + ')' : ''));
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

const q = (s) => JSON.stringify(s);
// A selector matches a visible element: laid out, not hidden by CSS.
const VISIBLE = `(e) => !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden'`;

const commands = {
  async open(c) {
    if (pages.has(c.page)) throw new Error('page ' + c.page + ' is open already');
    const cname = c.ctx || c.page;
    let p = null;
    if (!contexts.has(cname)) {
      const s = await takeSpare();
      if (s) {
        contexts.set(cname, s.ctx);
        p = s.page;
      }
    }
    if (!p) p = await (await context(cname)).newPage();
    pages.set(c.page, { page: p, ctx: cname });
    watch(c.page, p);
    await p.evaluateOnNewDocument(PRELUDE);
    await p.setViewport({ width: c.width || 1280, height: c.height || 800,
                          deviceScaleFactor: 1, isMobile: false, hasTouch: false });
    await setColors(p, !!c.dark);
    p.setDefaultTimeout(c.timeout || 15000);
    if (c.url) await p.goto(c.url, { waitUntil: 'load', timeout: c.timeout || 15000 });
    if (!spare) makeSpare();
    return true;
  },
  async goto(c) {
    await page(c.page).goto(c.url, { waitUntil: 'load', timeout: c.timeout || 15000 });
    return true;
  },
  async reload(c) {
    await page(c.page).reload({ waitUntil: 'load', timeout: c.timeout || 15000 });
    return true;
  },
  async viewport(c) {
    await page(c.page).setViewport({ width: c.width, height: c.height, deviceScaleFactor: 1 });
    return true;
  },
  async dark(c) {
    await setColors(page(c.page), c.dark !== false);
    return true;
  },
  async close(c) {
    const entry = pages.get(c.page);
    if (!entry) return false;
    pages.delete(c.page);
    await entry.page.close();
    return true;
  },
  // Close a person's context (all its pages): their storage is gone.
  async closeCtx(c) {
    for (const [name, e] of [...pages]) {
      if (e.ctx === c.ctx) pages.delete(name);
    }
    const ctx = contexts.get(c.ctx);
    if (!ctx) return false;
    contexts.delete(c.ctx);
    await ctx.close();
    return true;
  },
  async waitFor(c) {
    const p = page(c.page);
    const t = c.timeout || 10000;
    if (c.fn) return poll(p, c.fn, t, c.fn);
    if (c.sel && c.text !== undefined) {
      const expr = `(() => { const e = document.querySelector(${q(c.sel)});
        return !!e && e.textContent.includes(${q(c.text)}); })()`;
      return poll(p, expr, t, c.sel + ' containing ' + q(c.text));
    }
    if (c.sel && c.hidden) {
      const expr = `(() => { const e = document.querySelector(${q(c.sel)});
        return !(${VISIBLE})(e); })()`;
      return poll(p, expr, t, c.sel + ' hidden or gone');
    }
    if (c.sel && c.count !== undefined) {
      const expr = `document.querySelectorAll(${q(c.sel)}).length === ${Number(c.count)}`;
      return poll(p, expr, t, c.count + ' of ' + c.sel);
    }
    if (c.sel) {
      const expr = c.visible === false ? `!!document.querySelector(${q(c.sel)})`
        : `(${VISIBLE})(document.querySelector(${q(c.sel)}))`;
      return poll(p, expr, t, c.sel + (c.visible === false ? '' : ' visible'));
    }
    throw new Error('waitFor needs fn or sel');
  },
  // Click where a person would (the element's middle, real mouse events)
  // once it is visible; again if the app re-rendered it in between.
  async click(c) {
    const p = page(c.page);
    const t = c.timeout || 10000;
    const deadline = Date.now() + t;
    for (;;) {
      await poll(p, `(${VISIBLE})(document.querySelector(${q(c.sel)}))`, Math.max(1, deadline - Date.now()),
        c.sel + ' visible');
      try {
        await p.click(c.sel);
        return true;
      } catch (e) {
        const m = String(e && e.message);
        if (!/detached|not clickable|not an Element|No node found|Execution context was destroyed/.test(m) ||
            Date.now() >= deadline) throw e;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  },
  async focus(c) {
    await page(c.page).focus(c.sel);
    return true;
  },
  // Type as a person does (key events one by one), into sel if given.
  async type(c) {
    const p = page(c.page);
    if (c.sel) {
      await poll(p, `(${VISIBLE})(document.querySelector(${q(c.sel)}))`, c.timeout || 10000,
        c.sel + ' visible');
      await p.focus(c.sel);
      if (c.clear) {
        await p.$eval(c.sel, (e) => { e.value = ''; e.dispatchEvent(new Event('input', { bubbles: true })); });
      }
    }
    await p.keyboard.type(c.text, { delay: c.delay || 0 });
    return true;
  },
  // Set a field's value at once (long texts) and fire input, as a paste would.
  async fill(c) {
    const p = page(c.page);
    await p.$eval(c.sel, (e, v) => {
      e.focus();
      e.value = v;
      e.dispatchEvent(new InputEvent('input', { bubbles: true, inputType: 'insertFromPaste' }));
    }, c.text);
    return true;
  },
  async press(c) {
    const p = page(c.page);
    if (c.sel) await p.focus(c.sel);
    const mods = c.modifiers || [];
    for (const m of mods) await p.keyboard.down(m);
    await p.keyboard.press(c.key);
    for (const m of mods.slice().reverse()) await p.keyboard.up(m);
    return true;
  },
  async text(c) {
    return page(c.page).evaluate((s) => {
      const e = document.querySelector(s);
      return e ? e.textContent : null;
    }, c.sel);
  },
  async texts(c) {
    return page(c.page).evaluate((s) => [...document.querySelectorAll(s)].map((e) => e.textContent), c.sel);
  },
  async attr(c) {
    return page(c.page).evaluate((s, n) => {
      const e = document.querySelector(s);
      return e ? e.getAttribute(n) : null;
    }, c.sel, c.name);
  },
  async attrs(c) {
    return page(c.page).evaluate((s, n) => [...document.querySelectorAll(s)].map((e) => e.getAttribute(n)),
      c.sel, c.name);
  },
  async count(c) {
    return page(c.page).evaluate((s) => document.querySelectorAll(s).length, c.sel);
  },
  async visible(c) {
    return page(c.page).evaluate(`(${VISIBLE})(document.querySelector(${q(c.sel)}))`);
  },
  // Evaluate an expression (a promise is awaited); the value must be JSON.
  async eval(c) {
    return page(c.page).evaluate(c.js);
  },
  async screenshot(c) {
    await page(c.page).screenshot({ path: c.path, fullPage: !!c.fullPage });
    return c.path;
  },
  // Cut the page off the network (existing WebSockets included, as
  // Chromium's offline emulation does) or put it back.
  async offline(c) {
    await page(c.page).setOfflineMode(!!c.offline);
    return true;
  },
  // A script run in every document of the page before its own (puppeteer
  // evaluateOnNewDocument): replaces what headless Chromium cannot do,
  // e.g. PushManager.subscribe (no push service to reach).
  async initScript(c) {
    await page(c.page).evaluateOnNewDocument(c.js);
    return true;
  },
  // Grant the page's context permissions for origin (['notifications']),
  // as a person's "Allow" in the browser's prompt would.
  async grant(c) {
    const entry = pages.get(c.page);
    if (!entry) throw new Error('no page ' + JSON.stringify(c.page));
    await contexts.get(entry.ctx).overridePermissions(c.origin, c.permissions);
    return true;
  },
  // Deliver a push message (c.data, text) to the service worker of
  // c.origin, as the browser does when its push service brings one (CDP
  // ServiceWorker.deliverPushMessage).
  async swPush(c) {
    const p = page(c.page);
    const cdp = await p.createCDPSession();
    try {
      const reg = new Promise((resolve) => {
        cdp.on('ServiceWorker.workerRegistrationUpdated', (ev) => {
          const r = ev.registrations.find((x) => x.scopeURL.startsWith(c.origin) && !x.isDeleted);
          if (r) resolve(r.registrationId);
        });
      });
      await cdp.send('ServiceWorker.enable');
      const id = await Promise.race([reg, new Promise((_, rej) => setTimeout(
        () => rej(new Error('no service worker registration for ' + c.origin)), c.timeout || 10000))]);
      await cdp.send('ServiceWorker.deliverPushMessage', { origin: c.origin, registrationId: id, data: c.data });
      return id;
    } finally {
      await cdp.detach().catch(() => {});
    }
  },
  async errors(c) {
    const got = c.page ? errors.filter((e) => e.page === c.page) : errors.slice();
    if (c.clear !== false) {
      for (let i = errors.length - 1; i >= 0; i--) {
        if (!c.page || errors[i].page === c.page) errors.splice(i, 1);
      }
    }
    return got;
  },
  async dialogs(c) {
    const got = dialogs.slice();
    if (c.clear !== false) dialogs.length = 0;
    return got;
  },
  async pages() {
    return [...pages.keys()];
  },
  async quit() {
    return true;
  },
};

async function main() {
  browser = await launchChromium(CHROMIUM, 60000);
  browser.on('disconnected', () => {
    if (quitting) return;
    out({ event: 'browser-gone' });
    process.exit(3);
  });
  out({ event: 'ready', version: await browser.version(), pid: browser.process() ? browser.process().pid : null });

  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let c;
    try {
      c = JSON.parse(line);
    } catch (e) {
      out({ id: null, ok: false, error: 'bad JSON: ' + e.message });
      continue;
    }
    const fn = commands[c.cmd];
    if (!fn) {
      out({ id: c.id, ok: false, error: 'unknown command ' + c.cmd });
      continue;
    }
    try {
      const value = await fn(c);
      out({ id: c.id, ok: true, value: value === undefined ? null : value });
    } catch (e) {
      out({ id: c.id, ok: false, error: String(e && e.message ? e.message : e) });
    }
    if (c.cmd === 'quit') break;
  }
  quitting = true;
  spare = null;
  await browser.close().catch(() => {});
  process.exit(0);
}

main().catch((e) => {
  out({ event: 'error', error: String(e && e.stack ? e.stack : e) });
  if (browser) browser.close().catch(() => {});
  process.exit(2);
});
