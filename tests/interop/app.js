// app.js - a small chat app on MQTT.js that uses only the mqchat wire
// contract (docs/PROTOCOL.md): register, chat with a peer in both
// directions, send and receive receipts, sync the archive.
//
//   APP_PASSWORD=... node app.js --port P --user nora --peer alice \
//       [--register] [--nick Nora] [--expect 1] [--timeout 20]
//
// It prints one JSON object per line on stdout (events for the test) and
// reads commands, one per line, on stdin:
//   send <text>      send a text message to the peer
//   sync             sync the archive from seq 0 and print the bodies
//   quit             disconnect and exit 0
// Any failure prints {"event":"error",...} and exits 1.
'use strict';

const crypto = require('crypto');
const readline = require('readline');
const mqtt = require('mqtt');

function parseArgs(argv) {
  const a = { host: '127.0.0.1', port: 1883, register: false, nick: null, timeout: 20 };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--register') { a.register = true; continue; }
    if (!['--host', '--port', '--user', '--peer', '--nick', '--timeout'].includes(k) || v === undefined) {
      throw new Error('bad argument ' + k);
    }
    a[k.slice(2)] = (k === '--port' || k === '--timeout') ? Number(v) : v;
    i++;
  }
  if (!a.user || !a.peer) throw new Error('--user and --peer are required');
  return a;
}

const args = parseArgs(process.argv);
const password = process.env.APP_PASSWORD || '';
const NAME = /^[a-z0-9][a-z0-9_.-]{0,31}$/;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function fail(what, err) {
  emit({ event: 'error', what, message: String(err && err.message ? err.message : err) });
  process.exit(1);
}

// Message ids: 26 characters of [A-Za-z0-9] (the contract allows 1..64 of [A-Za-z0-9_-]).
function newId() {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let s = '';
  while (s.length < 26) {
    const b = crypto.randomBytes(32);
    for (const x of b) if (x < 248 && s.length < 26) s += alphabet[x % 62];
  }
  return s;
}

function connect(opts) {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`mqtt://${args.host}:${args.port}`, Object.assign({
      protocolVersion: 5,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    }, opts));
    c.once('connect', () => resolve(c));
    c.once('error', (e) => { c.end(true); reject(e); });
    c.once('close', () => reject(new Error('connection closed before CONNACK')));
  });
}

// Publish QoS 1 and wait for the PUBACK; MQTT.js rejects a PUBACK whose
// reason code is >= 0x80 (the broker refused: blocked, not a member, ...).
function publish(c, topic, obj) {
  return c.publishAsync(topic, JSON.stringify(obj), { qos: 1 });
}

// Registration: connect as the pseudo-user "_register" with client id
// "_register@<random>", subscribe to the answer topic, then ask.
async function register() {
  const cid = '_register@' + crypto.randomBytes(8).toString('hex');
  const c = await connect({ clientId: cid, username: '_register', password: 'x', clean: true });
  const resp = `chat/register/${cid}/resp`;
  const id = newId();
  const answer = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no registration answer')), args.timeout * 1000);
    c.on('message', (topic, payload) => {
      let m;
      try { m = JSON.parse(payload.toString()); } catch (e) { return; }
      if (topic === resp && m.id === id) { clearTimeout(t); resolve(m); }
    });
  });
  await c.subscribeAsync(resp, { qos: 1 });
  const req = { id, user: args.user, password };
  if (args.nick) req.nick = args.nick;
  await publish(c, `chat/register/${cid}/req`, req);
  const m = await answer;
  await c.endAsync();
  emit({ event: 'registered', ok: m.ok === true, error: m.error || null });
  if (m.ok !== true && m.error !== 'taken') throw new Error('registration failed: ' + m.error);
}

async function main() {
  if (!NAME.test(args.user) || !NAME.test(args.peer)) throw new Error('invalid name');
  if (args.register) await register();

  // A new account is visible to the broker within about a second: retry.
  let c = null;
  const until = Date.now() + args.timeout * 1000;
  for (;;) {
    try {
      c = await connect({
        clientId: `${args.user}@node`,
        username: args.user,
        password,
        clean: false,                                   // persistent session
        properties: { sessionExpiryInterval: 7 * 24 * 3600 },
      });
      break;
    } catch (e) {
      if (Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  c.on('error', (e) => fail('mqtt', e));

  const me = args.user;
  const seen = new Set();
  const rpcWaiters = new Map();

  c.on('message', (topic, payload) => {
    const parts = topic.split('/');
    if (parts[0] === 'chat' && parts[1] === 'rpc' && parts[3] === 'resp') {
      let m;
      try { m = JSON.parse(payload.toString()); } catch (e) { return; }
      const w = rpcWaiters.get(m.id);
      if (w) { rpcWaiters.delete(m.id); w(m); }
      return;
    }
    // chat/inbox/<me>/<from>: the sender is the topic's last level, never a payload field.
    if (parts.length !== 4 || parts[0] !== 'chat' || parts[1] !== 'inbox' || parts[2] !== me) return;
    const from = parts[3];
    let m;
    try { m = JSON.parse(payload.toString()); } catch (e) { return; }
    const key = from + '/' + m.id;
    if (seen.has(key)) return;                          // QoS 1 duplicate
    seen.add(key);
    if (m.type === 'text') {
      emit({ event: 'text', from, id: m.id, body: m.body, ts: m.ts });
      // delivered when it arrives, read once "shown" (printed)
      for (const status of ['delivered', 'read']) {
        publish(c, `chat/inbox/${from}/${me}`, { id: newId(), type: 'receipt', ref: m.id, status })
          .catch((e) => fail('receipt', e));
      }
    } else if (m.type === 'receipt') {
      emit({ event: 'receipt', from, ref: m.ref, status: m.status });
    }
  });

  function rpc(op, fields) {
    const id = newId();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { rpcWaiters.delete(id); reject(new Error('no answer to ' + op)); },
        args.timeout * 1000);
      rpcWaiters.set(id, (m) => { clearTimeout(t); resolve(m); });
      publish(c, `chat/rpc/${me}/req`, Object.assign({ id, op }, fields)).catch(reject);
    });
  }

  const granted = await c.subscribeAsync([`chat/inbox/${me}/#`, `chat/rpc/${me}/resp`], { qos: 1 });
  for (const g of granted) {
    if (g.qos >= 0x80) throw new Error('subscription refused: ' + g.topic);
  }
  emit({ event: 'ready', clientId: `${me}@node` });

  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const [cmd, ...rest] = line.split(' ');
    if (cmd === 'send') {
      const msg = { id: newId(), type: 'text', body: rest.join(' '), ts: Date.now() };
      try {
        await publish(c, `chat/inbox/${args.peer}/${me}`, msg);
        emit({ event: 'sent', id: msg.id });
      } catch (e) {
        emit({ event: 'refused', id: msg.id, message: String(e.message) });
      }
    } else if (cmd === 'sync') {
      const bodies = [];
      let after = 0;
      for (;;) {
        const r = await rpc('sync', { after, limit: 100 });
        if (r.ok !== true) throw new Error('sync failed: ' + r.error);
        for (const m of r.messages) {
          if (m.type === 'text') bodies.push({ from: m.from, to: m.to, body: m.body, seq: m.seq });
          after = Math.max(after, m.seq);
        }
        if (!r.more || r.messages.length === 0) break;
      }
      emit({ event: 'sync', messages: bodies });
    } else if (cmd === 'quit') {
      break;
    }
  }
  await c.endAsync();
  emit({ event: 'bye' });
}

main().then(() => process.exit(0), (e) => fail('main', e));
