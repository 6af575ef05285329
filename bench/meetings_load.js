'use strict';
// Meeting load for bench/meetings.py: N meetings, host and guest on different careline processes, each
// guest through the lobby (join -> lobby:admitted timed), then every peer trickles ICE candidates to the
// other through `signal` at a fixed rate; latency = signal receipt - send time (one clock).
const fs = require('fs');
const { performance, monitorEventLoopDelay } = require('perf_hooks');
const { SioClient } = require('./loadgen/sio.js');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const PROBE = '"candidate":"p:';
const quantile = (xs, p) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] : null);

async function connect(url, user) {
  const c = new SioClient(url, '/meetings', { token: user.token });
  await c.connect();
  return c;
}

async function must(socket, event, data) {
  const ack = await socket.emitWithAck(event, data);
  if (!ack || !ack.ok) throw new Error(`${event} failed ${JSON.stringify(ack)}`);
  return ack.data;
}

function waitFor(socket, event) {
  return new Promise((resolve) => { socket.handlers[event] = (arr) => resolve(arr[1]); });
}

async function setUp(i, m) {
  const [host, guest] = await Promise.all([connect(cfg.urls[i % 2], m.host), connect(cfg.urls[(i + 1) % 2], m.guest)]);
  const meeting = await must(host, 'meeting:create', { participantIds: [m.guest.sub], start: cfg.start, end: cfg.end,
    requestId: `bench${i}` });
  await must(host, 'meeting:join', { meetingId: meeting.id });
  host.handlers['lobby:waiting'] = (arr) => {
    host.emitWithAck('lobby:admit', { meetingId: meeting.id, userId: arr[1].userId }).catch(() => {});
  };
  return { host, guest, meeting: meeting.id, subs: [m.host.sub, m.guest.sub] };
}

// The guest joins, waits in the lobby, the host admits on lobby:waiting: join sent -> lobby:admitted received.
async function admitGuest(room) {
  const admitted = waitFor(room.guest, 'lobby:admitted');
  const t0 = performance.now();
  const joined = await must(room.guest, 'meeting:join', { meetingId: room.meeting });
  if (joined.status !== 'waiting') throw new Error('guest did not wait in the lobby');
  await admitted;
  return performance.now() - t0;
}

async function main() {
  const rooms = [];
  for (let i = 0; i < cfg.meetings.length; i += 20) {
    rooms.push(...(await Promise.all(cfg.meetings.slice(i, i + 20).map((m, k) => setUp(i + k, m)))));
  }
  await sleep(1000);
  const joins = [];
  for (let i = 0; i < rooms.length; i += cfg.joinBatch) {
    joins.push(...(await Promise.all(rooms.slice(i, i + cfg.joinBatch).map(admitGuest))));
  }
  joins.sort((x, y) => x - y);
  const peers = rooms.flatMap((r) => [[r.host, r.meeting, r.subs[1]], [r.guest, r.meeting, r.subs[0]]]);
  const latencies = [];
  let received = 0, firstSend = Infinity, sent = 0, failed = 0;
  const failedCodes = {};
  for (const [socket] of peers) {
    socket.onRawEvent = (body) => {
      const k = body.indexOf(PROBE);
      if (k < 0) return false;
      const t = parseFloat(body.slice(k + PROBE.length, body.indexOf(' ', k)));
      if (t >= firstSend) { latencies.push(performance.now() - t); received++; }
      return true;
    };
  }
  let seq = 0;
  const send = (n, measure) => {
    const [socket, meetingId, to] = peers[n % peers.length];
    const t = performance.now();
    const candidate = `p:${t} 1 udp 2122260223 10.0.${(n >> 8) & 255}.${n & 255} ${50000 + (n % 10000)} typ host generation 0`;
    const fail = (code) => { failed++; failedCodes[code] = (failedCodes[code] || 0) + 1; };
    socket.emitWithAck('signal', { meetingId, to, type: 'candidate', payload: { candidate, sdpMid: '0', sdpMLineIndex: 0 } })
      .then((a) => { if (!a || !a.ok) fail(a && a.error ? a.error.code : 'no ack'); }, () => fail('no ack'));
    if (measure) sent++;
  };
  const total = cfg.perPeer * peers.length;
  const run = async (seconds, measure) => {
    const start = performance.now();
    let n = 0;
    while (performance.now() - start < seconds * 1000) {
      const due = Math.floor(((performance.now() - start) / 1000) * total);
      for (; n < due; n++) send(seq++, measure);
      await sleep(2);
    }
  };
  await run(cfg.warmup, false);
  await sleep(1000);
  // The load generator's own CPU and event-loop delay while it sends, so a slow generator shows.
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  firstSend = t0;
  process.stderr.write('measure:start\n');
  await run(cfg.duration, true);
  const t1 = performance.now();
  process.stderr.write('measure:end\n');
  const cpu = process.cpuUsage(cpu0);
  loopDelay.disable();
  await sleep(cfg.drain * 1000);
  latencies.sort((x, y) => x - y);
  process.stdout.write(JSON.stringify({
    meetings: rooms.length, peers: peers.length, offered: total, sent, received, failed, failedCodes,
    lost: sent - received,
    achieved: received / ((t1 - t0) / 1000), p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99),
    max: latencies[latencies.length - 1] ?? null, joinP50: quantile(joins, 0.5), joinP99: quantile(joins, 0.99),
    joinMax: joins[joins.length - 1],
    lgCpu: (cpu.user + cpu.system) / 1000 / (t1 - t0), lgLag99: loopDelay.percentile(99) / 1e6,
    lgLagMax: loopDelay.max / 1e6,
  }) + '\n');
  await Promise.all(peers.map(([s]) => s.close()));
}

main().catch((e) => { console.error(e); process.exit(1); });
