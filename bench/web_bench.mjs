// web_bench.mjs - the web app's figures in headless Chromium (bench/web_bench.py
// starts the broker, plugin and archiver serving the app, fills the
// archive, runs this, and writes bench/results/web.md and web.json).
//
//   node bench/web_bench.mjs --url http://127.0.0.1:P/ --user alice --peer bob \
//        --password PW --scroll-peer dora --loads 20 --messages 200 [--chromium PATH]
//
// Prints one JSON object on stdout:
//   transfer   bytes on the wire (encodedDataLength of every response, gzip
//              as served) of a first visit: the login page, then the app
//              after logging in
//   list       ms from navigation start to the conversation list shown, one
//              per load with a stored token
//   latency    ms from the click on #send in one page to the body showing in
//              the other (a MutationObserver), per message; both pages in
//              one browser, so one clock (performance.timeOrigin + now())
//   scroll     every frame's duration (requestAnimationFrame) and the long
//              tasks while scrolling a 10,000-message conversation back to
//              its first message
import { launchChromium } from '../tests/web/chromium.mjs';

const argv = process.argv.slice(2);
function arg(name, dflt) {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
}
const URL_ = arg('--url');
const USER = arg('--user', 'alice');
const PEER = arg('--peer', 'bob');
const SCROLL_PEER = arg('--scroll-peer', 'dora');
const PASSWORD = arg('--password');
const LOADS = Number(arg('--loads', '20'));
const MESSAGES = Number(arg('--messages', '200'));
const SCROLL_LIMIT_S = Number(arg('--scroll-seconds', '300'));
// Pixels per wheel event: a fast flick of several notches, so that 10,000
// messages (some 600,000 px) take a few hundred events.
const WHEEL = Number(arg('--wheel', '4000'));
const CHROMIUM = arg('--chromium', '/usr/bin/chromium');
// The id of the long conversation's first message (bench/web_bench.py).
const FIRST_ID = arg('--first-id', 'long000000');
const PHASES = arg('--phases', 'transfer,list,latency,scroll').split(',');

const log = (...a) => process.stderr.write('web_bench: ' + a.join(' ') + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(fn, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let v;
    try { v = await fn(); } catch (e) { v = false; }
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(20);
  }
}

// Set before any script of a page: when the conversation list first shows.
const LIST_PROBE = `(() => {
  window.__listShown = null;
  const check = () => {
    if (window.__listShown !== null) return;
    const c = document.querySelector('#convs .conv');
    if (c && c.getClientRects().length > 0) { window.__listShown = performance.now(); mo.disconnect(); }
  };
  const mo = new MutationObserver(check);
  mo.observe(document, {childList: true, subtree: true, attributes: true});
})();`;

async function newPage(browser, width = 1280, height = 800) {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport({ width, height });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  return { ctx, page, errors };
}

async function login(page, user, password) {
  await page.waitForSelector('#login-user', { visible: true, timeout: 20000 });
  await page.type('#login-user', user);
  await page.type('#login-password', password);
  await page.click('#login-submit');
  await until(() => page.evaluate(() => {
    const s = document.querySelector('#status');
    return !!s && s.dataset.state === 'online' && !!document.querySelector('#convs');
  }), 30000, user + ' online');
}

async function openConv(page, key) {
  const [kind, name] = key.split(':');
  await page.evaluate((h) => { location.hash = h; }, `#/${kind}/${name}`);
  await until(() => page.evaluate((k) => {
    const c = document.querySelector('#chat');
    return !!c && c.dataset.conv === k && !!document.querySelector('#composer');
  }, key), 20000, 'conversation ' + key);
}

// 1. First visit: every response's bytes on the wire, until the login form
// is up and the network idle; then the rest the app loads after logging in.
async function firstVisit(browser) {
  const { ctx, page } = await newPage(browser);
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  const bytes = new Map();   // requestId -> encodedDataLength
  const urls = new Map();
  cdp.on('Network.responseReceived', (e) => urls.set(e.requestId, { url: e.response.url,
    encoding: (e.response.headers['content-encoding'] || e.response.headers['Content-Encoding'] || '') }));
  cdp.on('Network.loadingFinished', (e) => bytes.set(e.requestId, e.encodedDataLength));
  await page.goto(URL_, { waitUntil: 'networkidle0', timeout: 30000 });
  await page.waitForSelector('#login-form', { visible: true });
  const before = [...bytes.values()].reduce((a, b) => a + b, 0);
  const files = [...bytes.entries()].map(([id, n]) => ({ ...(urls.get(id) || { url: id }), bytes: n }));
  await login(page, USER, PASSWORD);
  await sleep(500);
  const after = [...bytes.values()].reduce((a, b) => a + b, 0);
  await ctx.close();
  return { login_page_bytes: before, with_app_bytes: after, requests: files.length, files };
}

// 2. The list with a stored token: N loads of the page.
async function listLoads(browser) {
  const { ctx, page, errors } = await newPage(browser);
  await page.goto(URL_, { waitUntil: 'load' });
  await login(page, USER, PASSWORD);
  await page.evaluateOnNewDocument(LIST_PROBE);
  await page.goto('about:blank');
  const ms = [];
  const steps = [];
  for (let i = 0; i < LOADS; i++) {
    await page.goto(URL_, { waitUntil: 'load', timeout: 30000 });
    const t = await until(() => page.evaluate(() => window.__listShown), 20000, 'the list');
    ms.push(t);
    // Where the time went: the document, the app's own marks (connected,
    // subscribed, ready, ...), every resource's end.
    await sleep(200);
    steps.push(await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0] || {};
      const res = performance.getEntriesByType('resource');
      return {
        list: window.__listShown,
        dcl: Math.round(nav.domContentLoadedEventEnd || 0),
        load: Math.round(nav.loadEventEnd || 0),
        last_resource: Math.round(Math.max(0, ...res.map((r) => r.responseEnd))),
        marks: Object.fromEntries(performance.getEntriesByType('mark').map((m) => [m.name, Math.round(m.startTime)])),
      };
    }));
    await page.goto('about:blank');
  }
  await ctx.close();
  return { ms, steps, errors };
}

// 3. Send to show: A clicks #send, B's MutationObserver sees the body.
// Stamps, in the page, when a frame holding a bench body is handed to the
// WebSocket (send) and when one arrives (its message event, before MQTT.js
// sees it): the sender's and the receiver's own work then split apart.
function stampFrames() {
  window.__wsSent = new Map();
  window.__wsRecv = new Map();
  const dec = new TextDecoder();
  const key = (d) => {
    try {
      const s = typeof d === 'string' ? d : dec.decode(d instanceof ArrayBuffer ? new Uint8Array(d) : d);
      const m = /bench [0-9a-z]+ [0-9]+/.exec(s);
      return m ? m[0] : null;
    } catch { return null; }
  };
  const now = () => performance.timeOrigin + performance.now();
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (d) {
    const k = key(d);
    if (k && !window.__wsSent.has(k)) window.__wsSent.set(k, now());
    return send.call(this, d);
  };
  const add = WebSocket.prototype.addEventListener;
  WebSocket.prototype.addEventListener = function (type, fn, opts) {
    if (type === 'message' && typeof fn === 'function') {
      const inner = fn;
      fn = function (ev) {
        const k = key(ev.data);
        if (k && !window.__wsRecv.has(k)) window.__wsRecv.set(k, now());
        return inner.call(this, ev);
      };
    }
    return add.call(this, type, fn, opts);
  };
}

async function latency(browser) {
  const a = await newPage(browser);
  const b = await newPage(browser);
  await a.page.evaluateOnNewDocument(stampFrames);
  await b.page.evaluateOnNewDocument(stampFrames);
  await a.page.goto(URL_, { waitUntil: 'load' });
  await login(a.page, USER, PASSWORD);
  await b.page.goto(URL_, { waitUntil: 'load' });
  await login(b.page, PEER, PASSWORD);
  await openConv(a.page, 'u:' + PEER);
  await openConv(b.page, 'u:' + USER);
  await b.page.evaluate(() => {
    window.__seen = new Map();
    const note = (n) => {
      const now = performance.timeOrigin + performance.now();
      const els = n.nodeType === 1 ? (n.matches('.msg-body') ? [n] : n.querySelectorAll('.msg-body')) : [];
      for (const e of els) if (!window.__seen.has(e.textContent)) window.__seen.set(e.textContent, now);
    };
    new MutationObserver((recs) => {
      for (const r of recs) {
        if (r.type === 'characterData') note(r.target.parentElement || r.target);
        for (const n of r.addedNodes) note(n.nodeType === 3 ? n.parentElement : n);
      }
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
  // The WebSocket frames, stamped by the browser's network service (one
  // monotonic clock for both pages): the click-to-frame-out time of A, the
  // broker's transit (A's frame out to B's frame in), and B's own time
  // from its frame in to the body in its DOM follow.
  const wsOut = new Map();   // body -> monotonic s
  const wsIn = new Map();
  const watchWs = async (p, ev, into) => {
    const cdp = await p.createCDPSession();
    await cdp.send('Network.enable');
    cdp.on(ev, (e) => {
      const r = e.response || {};
      let text = r.payloadData || '';
      if (r.opcode === 2) text = Buffer.from(text, 'base64').toString('latin1');
      const m = /bench [0-9a-z]+ [0-9]+/.exec(text);
      if (m && !into.has(m[0])) into.set(m[0], e.timestamp);
    });
  };
  await watchWs(a.page, 'Network.webSocketFrameSent', wsOut);
  await watchWs(b.page, 'Network.webSocketFrameReceived', wsIn);
  const run = Date.now().toString(36);
  const out = [];
  const transit = [];
  const t0s = new Map();
  const t1s = new Map();
  // A few unmeasured first: the first sends warm the code paths up.
  const warm = 5;
  for (let i = 0; i < MESSAGES + warm; i++) {
    const body = `bench ${run} ${i}`;
    const t0 = await a.page.evaluate((text) => {
      const c = document.querySelector('#composer');
      c.value = text;
      c.dispatchEvent(new InputEvent('input', { bubbles: true }));
      const t = performance.timeOrigin + performance.now();
      document.querySelector('#send').click();
      return t;
    }, body);
    const t1 = await b.page.evaluate((text) => new Promise((res, rej) => {
      const end = performance.now() + 10000;
      const chk = () => {
        if (window.__seen.has(text)) res(window.__seen.get(text));
        else if (performance.now() > end) rej(new Error('not shown: ' + text));
        else setTimeout(chk, 2);
      };
      chk();
    }), body);
    if (i >= warm) {
      t0s.set(body, t0);
      t1s.set(body, t1);
      out.push(t1 - t0);
      if (wsOut.has(body) && wsIn.has(body)) transit.push((wsIn.get(body) - wsOut.get(body)) * 1000);
    }
  }
  // The sender's page: click to frame handed to its WebSocket; the
  // receiver's: frame's message event to body in the DOM.
  const sent = new Map(await a.page.evaluate(() => [...window.__wsSent]));
  const recv = new Map(await b.page.evaluate(() => [...window.__wsRecv]));
  const sender = [];
  const receiver = [];
  for (const [body, t0] of t0s) {
    if (sent.has(body)) sender.push(sent.get(body) - t0);
    if (recv.has(body)) receiver.push(t1s.get(body) - recv.get(body));
  }
  const errors = a.errors.concat(b.errors);
  await a.ctx.close();
  await b.ctx.close();
  return { ms: out, transit_ms: transit, sender_ms: sender, receiver_ms: receiver, errors };
}

// 4. Scroll back through the long conversation, recording every frame.
async function scrollBack(browser) {
  const { ctx, page, errors } = await newPage(browser);
  await page.goto(URL_, { waitUntil: 'load' });
  await login(page, USER, PASSWORD);
  await openConv(page, 'u:' + SCROLL_PEER);
  await until(() => page.evaluate(() => document.querySelectorAll('#messages .msg').length > 0), 20000,
    'the first page of the long conversation');
  await sleep(300);
  await page.evaluate(() => {
    window.__frames = [];
    window.__longtasks = [];
    let last = performance.now();
    const tick = (t) => {
      window.__frames.push(t - last);
      last = t;
      if (!window.__stopFrames) requestAnimationFrame(tick);
    };
    requestAnimationFrame((t) => { last = t; requestAnimationFrame(tick); });
    try {
      new PerformanceObserver((l) => {
        for (const e of l.getEntries()) window.__longtasks.push(e.duration);
      }).observe({ type: 'longtask', buffered: false });
    } catch (e) { window.__longtasks = null; }
  });
  const box = await page.evaluate(() => {
    const r = document.querySelector('#messages').getBoundingClientRect();
    return { x: r.x + r.width / 2, y: r.y + r.height / 2 };
  });
  await page.mouse.move(box.x, box.y);
  const started = Date.now();
  let wheels = 0;
  let lastN = null;
  let lastChange = Date.now();
  // A person flicking the wheel upwards, a burst of notches per frame or
  // so, until the first message is loaded and in view.
  for (;;) {
    await page.mouse.wheel({ deltaY: -WHEEL });
    wheels++;
    // The app windows the DOM: progress is the oldest message in it.
    const st = await page.evaluate(() => {
      const m = document.querySelector('#messages');
      const first = m.querySelector('.msg[data-id]');
      const body = first ? first.querySelector('.msg-body') : null;
      return { top: m.scrollTop, more: m.dataset.more, n: m.querySelectorAll('.msg').length,
               first: first ? first.dataset.id : null, body: body ? body.textContent.slice(0, 40) : null };
    });
    if (st.more === 'false' && st.top <= 1 && st.first === FIRST_ID) break;
    if (st.first !== lastN) { lastN = st.first; lastChange = Date.now(); }
    if (Date.now() - lastChange > 20000) {
      throw new Error('scroll-back stalled for 20 s: ' + JSON.stringify(st));
    }
    if ((Date.now() - started) / 1000 > SCROLL_LIMIT_S) {
      throw new Error('scroll-back did not reach the top in ' + SCROLL_LIMIT_S + ' s: ' + JSON.stringify(st));
    }
    await sleep(16);
  }
  const seconds = (Date.now() - started) / 1000;
  await sleep(300);
  const res = await page.evaluate(() => {
    window.__stopFrames = true;
    const m = document.querySelector('#messages');
    const bodies = [...m.querySelectorAll('.msg-body')].map((b) => b.textContent);
    return { frames: window.__frames, longtasks: window.__longtasks, shown: m.querySelectorAll('.msg').length,
             first: bodies[0] || null, more: m.dataset.more };
  });
  await ctx.close();
  return { ...res, seconds, wheels, errors };
}

async function main() {
  const browser = await launchChromium(CHROMIUM, 120000);
  const result = { chromium: await browser.version() };
  try {
    if (PHASES.includes('transfer')) {
      log('first visit');
      result.transfer = await firstVisit(browser);
    }
    if (PHASES.includes('list')) {
      log('list loads x' + LOADS);
      result.list = await listLoads(browser);
    }
    if (PHASES.includes('latency')) {
      log('send to show x' + MESSAGES);
      result.latency = await latency(browser);
    }
    if (PHASES.includes('scroll')) {
      log('scroll back');
      result.scroll = await scrollBack(browser);
    }
  } catch (e) {
    result.error = String(e && e.stack ? e.stack : e);
  } finally {
    await browser.close().catch(() => {});
  }
  // Exit once the (large) line is written: a pipe takes it asynchronously.
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(result.error ? 1 : 0));
}

main();
