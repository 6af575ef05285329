'use strict';
// Restart-storm load for bench/storm.py: one of several Node processes, each holding its share of the clients
// as official socket.io-client v4 Managers (reconnection defaults: delay 1000, delayMax 5000, jitter 0.5), one
// WebSocket per client multiplexing /chat and /notifications.
//
//   node bench/storm_load.js CONFIG.json
//
// CONFIG: {urls: [A, B], transports, rate (messages/s of this process), conversations: [{therapist, members,
// lurker}], clients: [{sub, token, server}]} where therapist / members / lurker are indexes into clients.
// stdout: one JSON line per event for the runner (`connected`, `ready`, `result`); stdin: `traffic`, `stop`.
// A conversation's therapist opens it; every member but the lurker joins it on /chat (and again after every
// reconnect), the lurker only hears of messages through `notification:created` and reads them
// (`message:read`), so a notification and its read flow per message. After a reconnect a client catches up
// with `message:history {afterSeq}` and `notification:list {afterSeq}`. Times are Date.now() (the runner's
// clock too).
const fs = require('fs');
const readline = require('readline');
const { Manager } = require('socket.io-client');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const RECONNECTION = { reconnection: true, reconnectionDelay: 1000, reconnectionDelayMax: 5000,
  randomizationFactor: 0.5, timeout: 20000 };  // socket.io-client v4's defaults, spelled out
const ACK_MS = 30000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (msg) => process.stdout.write(JSON.stringify(msg) + '\n');
const count = (map, key) => { map[key] = (map[key] || 0) + 1; };

const nsErrors = {};     // namespace-level connect_error (server refused the namespace), by reason
const ackFailures = {};  // message:send refused or timed out, by code
const catchUpErrors = {};  // catch-up requests refused or timed out (retried), by event and code
let sent = 0;
let ackedCount = 0;
let skippedOffline = 0;  // sends due while the sender's socket was down: not sent (nothing buffered)

function reasonOf(err) {
  if (err && err.data && err.data.code) return err.data.code;
  const d = err && err.description;
  const inner = d && (d.message || (d.error && d.error.message) || (typeof d === 'number' ? `status ${d}` : null));
  return inner ? `${err.message}: ${inner}` : String((err && err.message) || err);
}

class Client {
  constructor(spec, index) {
    Object.assign(this, { spec, index, conv: null, lurker: false, connects: 0, noteConnects: 0,
      disconnectAt: null, reconnectAt: null, caughtUpAt: null, attempts: 0, errors: [], received: new Set(),
      notes: new Set(), catchingUp: 0, lastNote: 0 });
    const mgr = new Manager(cfg.urls[spec.server], { ...RECONNECTION, transports: cfg.transports, autoConnect: false });
    this.mgr = mgr;
    this.chat = mgr.socket('/chat', { auth: { token: spec.token } });
    this.noteSock = mgr.socket('/notifications', { auth: { token: spec.token } });
    mgr.on('reconnect_attempt', (n) => { this.attempts = Math.max(this.attempts, n); });
    mgr.on('reconnect_error', (err) => this.errors.push([Date.now(), reasonOf(err)]));
    for (const sock of [this.chat, this.noteSock]) {
      sock.on('disconnect', () => { if (this.disconnectAt === null || this.reconnectAt !== null) this.newOutage(); });
      sock.on('connect_error', (err) => {
        if (sock.active) return;  // the Manager retries: counted by reconnect_error
        count(nsErrors, reasonOf(err));  // refused by the namespace: socket.io-client does not retry by itself
        setTimeout(() => sock.connect(), 1000 + Math.random() * 1000);
      });
    }
    this.chat.on('connect', () => { this.connects += 1; this.onConnect(); });
    this.noteSock.on('connect', () => { this.noteConnects += 1; this.onConnect(); });
    this.chat.on('message:created', (m) => { if (m.conversationId === this.conv) this.received.add(m.seq); });
    this.noteSock.on('notification:created', (n) => this.onNotification(n));
  }

  newOutage() {
    this.disconnectAt = Date.now();
    this.reconnectAt = null;
    this.caughtUpAt = null;
  }

  start() {
    return new Promise((resolve, reject) => {
      let pending = 2;
      const done = () => { pending -= 1; if (pending === 0) resolve(); };
      this.chat.once('connect', done);
      this.noteSock.once('connect', done);
      this.mgr.once('error', reject);
      this.mgr.open();
      this.chat.connect();
      this.noteSock.connect();
    });
  }

  get connected() { return this.chat.connected && this.noteSock.connected; }

  onConnect() {
    if (this.disconnectAt === null || !this.connected) return;  // the first connect, or half of a reconnect
    this.reconnectAt = Date.now();
    this.catchUp();
  }

  onNotification(n) {
    this.notes.add(n.seq);
    this.lastNote = Math.max(this.lastNote, n.seq);
    if (this.lurker && n.category === 'message' && n.data && n.data.conversationId === this.conv) {
      this.chat.timeout(ACK_MS).emit('message:read', { conversationId: this.conv, seq: n.data.seq }, () => {});
    }
  }

  contiguous() {
    let n = 0;
    while (this.received.has(n + 1)) n += 1;
    return n;
  }

  // Rejoin the conversation, then everything after the last contiguous seq, then notifications after the last
  // seen; a refusal (e.g. `unavailable`) is retried with the reconnection's backoff (1 s doubling to 5 s, +-50 %),
  // as an app would, and counted.
  async catchUp() {
    const round = ++this.catchingUp;
    for (let attempt = 0; ; attempt += 1) {
      try {
        await this.catchUpOnce(round);
        return;
      } catch (e) {
        count(catchUpErrors, e.message.replace(/"message":.*/, '').slice(0, 120));
        await sleep(backoff(attempt));
        if (round !== this.catchingUp || !this.connected) return;  // a newer reconnect catches up itself
      }
    }
  }

  async catchUpOnce(round) {
    if (!this.lurker) {
      await must(this.chat, 'conversation:join', { conversationId: this.conv });
      await this.history(this.contiguous());
    }
    for (let after = this.lastNote, more = true; more;) {
      const page = await must(this.noteSock, 'notification:list', { afterSeq: after, limit: 100 });
      for (const n of page.items) { this.notes.add(n.seq); after = Math.max(after, n.seq); }
      this.lastNote = Math.max(this.lastNote, after);
      more = page.nextCursor !== null && page.items.length > 0;
    }
    if (round === this.catchingUp && this.connected) this.caughtUpAt = Date.now();
  }

  async history(after, into = this.received) {
    for (let more = true; more;) {
      const page = await must(this.chat, 'message:history', { conversationId: this.conv, afterSeq: after, limit: 100 });
      for (const m of page.items) into.add(m.seq);
      after = Math.max(after, page.throughSeq || 0, ...page.items.map((m) => m.seq));
      more = page.hasMore;
      // an empty page with more to come: a gap younger than 5 s (a seq taken by a send that may still be
      // written, CONTRACT §chat history); ask again shortly, as tests/chat/helpers.catch_up does
      if (more && page.items.length === 0) await sleep(500);
    }
    return into;
  }

  record() {
    return { server: this.spec.server, lurker: this.lurker, disconnectAt: this.disconnectAt, reconnectAt: this.reconnectAt,
      caughtUpAt: this.caughtUpAt, attempts: this.attempts, errors: this.errors, notifications: this.notes.size };
  }
}

function backoff(attempt) {
  const ms = Math.min(5000, 1000 * 2 ** attempt);
  return ms * (0.5 + Math.random());
}

// A request the server refused as `unavailable` (or that timed out) is tried again after a backoff, a few times.
async function patiently(fn, tries = 8) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await fn();
    } catch (e) {
      if (attempt + 1 >= tries) throw e;
      count(catchUpErrors, `verify: ${e.message.replace(/"message":.*/, '').slice(0, 100)}`);
      await sleep(backoff(attempt));
    }
  }
}

async function must(socket, event, data) {
  const ack = await socket.timeout(ACK_MS).emitWithAck(event, data);
  if (!ack || !ack.ok) throw new Error(`${event}: ${JSON.stringify(ack && ack.error)}`);
  return ack.data;
}

async function inBatches(items, size, fn) {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

async function setUp(clients) {
  await inBatches(clients, cfg.connectConcurrency || 100, (c) => c.start());
  say({ type: 'connected', clients: clients.length });
  const rooms = cfg.conversations.map((spec, k) => ({ k, spec, acked: new Set(), next: 0,
    therapist: clients[spec.therapist], members: spec.members.map((i) => clients[i]), lurker: clients[spec.lurker] }));
  await inBatches(rooms, 20, async (room) => {
    const others = [...room.members, room.lurker].map((c) => c.spec.sub);
    const conv = await must(room.therapist.chat, 'conversation:open',
      { memberIds: others, title: `storm ${room.k}`, requestId: `storm-open-${cfg.runId}-${room.k}` });
    room.id = conv.id;
    room.lurker.lurker = true;
    for (const c of [room.therapist, ...room.members, room.lurker]) c.conv = conv.id;
    room.senders = [room.therapist, ...room.members];
    await Promise.all(room.senders.map((c) => must(c.chat, 'conversation:join', { conversationId: conv.id })));
  });
  return rooms;
}

// Paced sends over every room in turn; a sender whose socket is down is passed over (nothing buffered).
function traffic(rooms, stopped) {
  const t0 = Date.now();
  let k = 0;
  let issued = 0;
  const pending = new Set();
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - t0) / 1000) * cfg.rate);
    while (issued < due && !stopped.value) {
      issued += 1;
      const room = rooms[k++ % rooms.length];
      const sender = room.senders[room.next++ % room.senders.length];
      if (!sender.chat.connected) { skippedOffline += 1; continue; }
      sent += 1;
      const p = sender.chat.timeout(ACK_MS).emitWithAck('message:send',
        { conversationId: room.id, text: `storm ${sent}`, requestId: `s${cfg.index}-${sent}` })
        .then((ack) => {
          if (ack && ack.ok) { room.acked.add(ack.data.seq); sender.received.add(ack.data.seq); ackedCount += 1; }
          else count(ackFailures, (ack && ack.error && ack.error.code) || 'bad ack');
        }, (e) => count(ackFailures, e.message.includes('timed out') ? 'ack timeout' : e.message))
        .finally(() => pending.delete(p));
      pending.add(p);
    }
  }, 20);
  return { timer, pending };
}

async function verify(rooms) {
  let missingDeliveries = 0;  // (acked message, joined member) pairs not received live or by catch-up
  let missingMessages = 0;    // acked messages some joined member lacks
  let stillCatchingUp = 0;    // (acked message, member) pairs missing at members whose catch-up has not finished
  let notStored = 0;          // acked messages history does not return (durability)
  let lurkersBehind = 0;
  await inBatches(rooms, 20, async (room) => {
    const lacking = new Set();
    for (const c of room.senders) {
      const behind = c.disconnectAt !== null && c.caughtUpAt === null;
      for (const seq of room.acked) {
        if (c.received.has(seq)) continue;
        if (behind) stillCatchingUp += 1;
        else { missingDeliveries += 1; lacking.add(seq); }
      }
    }
    missingMessages += lacking.size;
    const stored = await patiently(() => room.lurker.history(0, new Set()));
    for (const seq of room.acked) if (!stored.has(seq)) notStored += 1;
    if (room.lurker.lastNote === 0 && room.acked.size > 0) lurkersBehind += 1;
  });
  return { missingDeliveries, missingMessages, stillCatchingUp, notStored, lurkersWithoutNotifications: lurkersBehind };
}

async function main() {
  const clients = cfg.clients.map((spec, i) => new Client(spec, i));
  const rooms = await setUp(clients);
  say({ type: 'ready' });
  const stopped = { value: false };
  let run = null;
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line === 'traffic') run = traffic(rooms, stopped);
    if (line === 'stop') break;
  }
  stopped.value = true;
  if (run) {
    clearInterval(run.timer);
    await Promise.allSettled([...run.pending]);
  }
  await sleep((cfg.drainSeconds || 3) * 1000);
  const checked = await verify(rooms);
  const result = JSON.stringify({ type: 'result', index: cfg.index, sent, acked: ackedCount, skippedOffline, ackFailures,
    nsErrors, catchUpErrors, ...checked, clients: clients.map((c) => c.record()) });
  for (const c of clients) c.mgr._close();
  process.stdout.write(result + '\n', () => process.exit(0));  // a pipe write is asynchronous: exit once it is out
}

main().catch((e) => { say({ type: 'error', message: String(e && e.stack || e) }); process.exit(1); });
