'use strict';
// Chat load for bench/chat.py: N two-member conversations, every member on its own socket, persisted
// messages at a fixed total rate; latency = message:created at the other member - send time (one clock).
const fs = require('fs');
const { performance } = require('perf_hooks');
const { SioClient } = require('./loadgen/sio.js');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const PROBE = '"text":"p:';

async function connectAll(users) {
  const sockets = [];
  for (let i = 0; i < users.length; i += 50) {
    const batch = users.slice(i, i + 50).map(async (u) => {
      const c = new SioClient(cfg.url, '/chat', { token: u.token });
      await c.connect();
      return c;
    });
    sockets.push(...(await Promise.all(batch)));
  }
  return sockets;
}

async function main() {
  const users = cfg.pairs.flatMap((p) => [p.a, p.b]);
  const sockets = await connectAll(users);
  const senders = [];
  for (let i = 0; i < cfg.pairs.length; i++) {
    const [a, b] = [sockets[2 * i], sockets[2 * i + 1]];
    const ack = await a.emitWithAck('conversation:open', { memberIds: [cfg.pairs[i].b.sub] });
    if (!ack.ok) throw new Error('open failed ' + JSON.stringify(ack));
    for (const s of [a, b]) {
      const j = await s.emitWithAck('conversation:join', { conversationId: ack.data.id });
      if (!j.ok) throw new Error('join failed ' + JSON.stringify(j));
    }
    senders.push([a, ack.data.id], [b, ack.data.id]);
  }
  const latencies = [];
  let received = 0, firstSend = Infinity, lastRecv = 0, sent = 0, failed = 0;
  const worstPerSecond = [];
  for (const s of sockets) {
    s.onRawEvent = (body) => {
      const k = body.indexOf(PROBE);
      if (k < 0) return false;
      const now = performance.now();
      const t = parseFloat(body.slice(k + PROBE.length, body.indexOf(' ', k)));
      if (t >= firstSend) {
        latencies.push(now - t); received++; lastRecv = now;
        const second = Math.floor((t - firstSend) / 1000);
        worstPerSecond[second] = Math.max(worstPerSecond[second] || 0, now - t);
      }
      return true;
    };
  }
  const send = (n) => {
    const [s, cid] = senders[n % senders.length];
    const t = performance.now();
    s.emitWithAck('message:send', { conversationId: cid, text: `p:${t} lorem ipsum dolor sit amet`,
      requestId: `b${n}` }).then((a) => { if (!a || !a.ok) failed++; }, () => { failed++; });
    return t;
  };
  const run = async (seconds, measure) => {
    const start = performance.now();
    let n = 0;
    while (performance.now() - start < seconds * 1000) {
      const due = Math.floor(((performance.now() - start) / 1000) * cfg.rate);
      for (; n < due; n++) {
        const t = send(cfg.offset + n);
        if (measure) sent++;
      }
      await sleep(2);
    }
    cfg.offset += n;
  };
  cfg.offset = 0;
  await run(cfg.warmup, false);
  await sleep(1000);
  const t0 = performance.now();
  firstSend = t0;
  process.stderr.write('measure:start\n');  // bench/chat.py samples the processes' cpu time here
  await run(cfg.duration, true);
  const t1 = performance.now();
  process.stderr.write('measure:end\n');
  await sleep(cfg.drain * 1000);
  latencies.sort((x, y) => x - y);
  const q = (p) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : null;
  const out = { sockets: sockets.length, conversations: cfg.pairs.length, offered: cfg.rate, sent, received,
    failed, lost: sent - received, achieved: received / ((Math.max(lastRecv, t1) - t0) / 1000),
    p50: q(0.5), p90: q(0.9), p99: q(0.99), max: latencies[latencies.length - 1] ?? null,
    worstPerSecond: worstPerSecond.map((ms) => Math.round(ms || 0)) };
  process.stdout.write(JSON.stringify(out) + '\n');
  await Promise.all(sockets.map((s) => s.close()));
}

main().catch((e) => { console.error(e); process.exit(1); });
