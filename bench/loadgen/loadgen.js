'use strict';
// careline benchmark load generator: one Node process, many sockets, one clock.
// Usage: node loadgen.js <config.json>
// stdout: one JSON object per line: {"type":"checkpoint",...} (the runner samples the server's
//         /proc and answers with a line on stdin), {"type":"progress",...}, and finally {"type":"result",...}
// stderr: human-readable progress.
const fs = require('fs');
const readline = require('readline');
const { performance, monitorEventLoopDelay } = require('perf_hooks');
const { SioClient } = require('./sio');
const { protocols, pmap } = require('./protocols');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const proto = protocols[cfg.protocol];
if (!proto) throw new Error('unknown protocol ' + cfg.protocol);
const tokens = JSON.parse(fs.readFileSync(cfg.tokensFile, 'utf8')); // {publisher: {id, token}, users: [{id, token}]}
const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => process.stderr.write(`[loadgen ${cfg.label || ''}] ${a.join(' ')}\n`);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

// ---- checkpoints: runner answers each with one line on stdin
const stdinLines = [];
const stdinWaiters = [];
readline.createInterface({ input: process.stdin }).on('line', (l) => {
  if (stdinWaiters.length) stdinWaiters.shift()(l); else stdinLines.push(l);
});
function checkpoint(name, extra) {
  out({ type: 'checkpoint', name, t: now(), ...extra });
  return new Promise((resolve) => { if (stdinLines.length) resolve(stdinLines.shift()); else stdinWaiters.push(resolve); });
}

// ---- CPU / event loop accounting for this process
function lgMeter() {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const c0 = process.cpuUsage();
  const t0 = now();
  return () => {
    const c = process.cpuUsage(c0);
    const wall = now() - t0;
    h.disable();
    return {
      lgCpuPct: wall > 0 ? (100 * (c.user + c.system) / 1000) / wall : 0,
      // the histogram records whole timer intervals: subtract the 5 ms sampling resolution
      lgLoopDelayP99Ms: Math.max(0, h.percentile(99) / 1e6 - 5),
      lgLoopDelayMaxMs: Math.max(0, h.max / 1e6 - 5),
    };
  };
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}
function summarize(arr) {
  const s = Float64Array.from(arr).sort();
  let sum = 0; for (const v of s) sum += v;
  return { n: s.length, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), max: s.length ? s[s.length - 1] : null, mean: s.length ? sum / s.length : null };
}
function payload(tag, a, b, t) {
  const head = `${tag}|${a}|${b}|${t.toFixed(3)}|`;
  return head.length >= cfg.payloadBytes ? head : head + '.'.repeat(cfg.payloadBytes - head.length);
}

async function connectMany(url, users, concurrency) {
  const clients = new Array(users.length);
  let failed = 0; let firstErr = null;
  await pmap(users, concurrency, async (u, i) => {
    const c = new SioClient(url, proto.namespace, proto.auth(u.token));
    try { await c.connect(); clients[i] = c; } catch (e) { failed++; firstErr = firstErr || String(e.message || e); }
  });
  return { clients: clients.filter(Boolean), failed, firstErr };
}
async function connectOrDie(url, users, what) {
  const t0 = now();
  const r = await connectMany(url, users, cfg.connectConcurrency || 100);
  if (r.failed) throw new Error(`${r.failed}/${users.length} ${what} sockets failed to connect: ${r.firstErr}`);
  log(`connected ${users.length} ${what} sockets in ${((now() - t0) / 1000).toFixed(1)} s`);
  return r.clients;
}

// =========================================================================== fan-out
// Also used for the cross-process Redis scenario (publishUrl != url).
async function fanout() {
  const N = cfg.sockets;
  const users = tokens.users.slice(0, N);
  if (users.length < N) throw new Error('not enough tokens');
  const [publisher] = await connectOrDie(cfg.publishUrl || cfg.url, [tokens.publisher], 'publisher');
  const receivers = await connectOrDie(cfg.url, users, 'receiver');
  const room = await proto.setupRoom(publisher, receivers, { memberIds: users.map((u) => u.id), title: 'bench fan-out' });

  let step = -1; let lat = null; let count = 0; let firstRecv = 0; let lastRecv = 0; let stray = 0;
  const onMsg = (arr) => {
    const t = now();
    const text = proto.textOf(arr);
    if (typeof text !== 'string' || text.charCodeAt(0) !== 70 /* F */) return;
    const p = text.split('|', 4);
    if (+p[1] !== step) { stray++; return; }
    if (count < lat.length) lat[count] = t - +p[3];
    if (count === 0) firstRecv = t;
    count++; lastRecv = t;
  };
  // Hot path: read the probe straight out of the raw packet body (no JSON.parse). The probe text
  // 'F|step|seq|sendTime|' contains no JSON-escaped characters, so it appears verbatim in the body.
  const evPrefix = '[' + JSON.stringify(proto.event) + ',';
  const onRaw = (body) => {
    if (!body.startsWith(evPrefix)) return false;
    const i = body.indexOf('"F|', evPrefix.length);
    if (i < 0) return false;
    const t = now();
    const a = i + 3; const b = body.indexOf('|', a); const c = body.indexOf('|', b + 1); const d = body.indexOf('|', c + 1);
    if (+body.slice(a, b) !== step) { stray++; return true; }
    if (count < lat.length) lat[count] = t - +body.slice(c + 1, d);
    if (count === 0) firstRecv = t;
    count++; lastRecv = t;
    return true;
  };
  for (const c of receivers) { c.on(proto.event, onMsg); if (!cfg.noRawPath) c.onRawEvent = onRaw; }

  async function runStep(stepNo, rate, seconds) {
    const bps = rate / N; // broadcasts per second
    const total = Math.max(1, Math.round(bps * seconds));
    const interval = 1000 / bps;
    const expected = total * N;
    lat = new Float64Array(expected); count = 0; firstRecv = 0; lastRecv = 0; stray = 0; step = stepNo;
    const meter = lgMeter();
    const t0 = now(); let sent = 0;
    await new Promise((resolve) => {
      const tick = () => {
        const due = Math.min(total, Math.floor((now() - t0) / interval) + 1);
        while (sent < due) { proto.publish(publisher, room, payload('F', stepNo, sent, now())); sent++; }
        if (sent >= total) return resolve();
        setTimeout(tick, Math.max(0, t0 + sent * interval - now()));
      };
      tick();
    });
    const lastSend = now();
    const deadline = lastSend + cfg.drainTimeout * 1000;
    while (count < expected && now() < deadline) await sleep(5);
    const drained = count >= expected;
    const end = drained ? lastRecv : now();
    const m = meter();
    const spanS = (end - t0) / 1000;
    return {
      rate, broadcastsPerS: bps, broadcasts: total, expected, delivered: count, lost: expected - count, drained, stray,
      // both rates use the same window convention: (last event - first send + one interval)
      offeredPerS: expected / ((lastSend - t0 + interval) / 1000),
      achievedPerS: count / (spanS + interval / 1000),
      latencyMs: summarize(lat.subarray(0, Math.min(count, expected))),
      ...m,
    };
  }

  if (cfg.warmup > 0) {
    log(`warm-up ${cfg.warmup}s at ${cfg.rates[0]}/s`);
    const w = await runStep(0, cfg.rates[0], cfg.warmup);
    if (!w.drained) log(`WARNING warm-up did not drain (${w.lost} missing)`);
    await sleep(500);
  }
  const steps = [];
  for (let i = 0; i < cfg.rates.length; i++) {
    const rate = cfg.rates[i];
    await checkpoint('step-start', { rate });
    const r = await runStep(i + 1, rate, cfg.stepDuration);
    await checkpoint('step-end', { rate });
    steps.push(r);
    const L = r.latencyMs;
    log(`rate ${rate}/s: achieved ${r.achievedPerS.toFixed(0)}/s p50 ${L.p50 && L.p50.toFixed(1)} ms p99 ${L.p99 && L.p99.toFixed(1)} ms lost ${r.lost} lg cpu ${r.lgCpuPct.toFixed(0)}%`);
    if (!r.drained && !cfg.noSkip) {
      log(`target could not drain within ${cfg.drainTimeout}s at ${rate}/s: skipping higher rates`);
      for (const rest of cfg.rates.slice(i + 1)) steps.push({ rate: rest, skipped: true });
      break;
    }
    await sleep(cfg.pauseMs || 1000);
  }
  await Promise.all([publisher, ...receivers].map((c) => c.close()));
  return { sockets: N, steps };
}

// =========================================================================== memory
async function memory() {
  const N = cfg.sockets;
  const users = tokens.users.slice(0, N);
  const warm = await connectMany(cfg.url, users.slice(0, 20), 20);
  if (warm.failed) throw new Error('warm-up connections failed: ' + warm.firstErr);
  await Promise.all(warm.clients.map((c) => c.close()));
  await sleep(1000);
  await checkpoint('baseline');
  // round 1 is the measured one; further rounds (--memory-rounds) connect and close the same users again
  const rounds = [];
  for (let k = 1; k <= (cfg.rounds || 1); k++) {
    const suffix = k === 1 ? '' : String(k);
    const t0 = now();
    const r = await connectMany(cfg.url, users, cfg.connectConcurrency || 100);
    const connectS = (now() - t0) / 1000;
    log(`round ${k}: connected ${r.clients.length}/${N} idle sockets in ${connectS.toFixed(1)} s (${r.failed} failed${r.firstErr ? ': ' + r.firstErr : ''})`);
    await sleep(cfg.settleMs);
    const alive = r.clients.filter((c) => c.connected).length;
    await checkpoint('loaded' + suffix, { connected: alive });
    await Promise.all(r.clients.map((c) => c.close()));
    await sleep(cfg.settleMs);
    await checkpoint('closed' + suffix);
    rounds.push({ connected: r.clients.length, aliveAtMeasure: alive, failed: r.failed, firstError: r.firstErr, connectSeconds: connectS });
  }
  return { sockets: N, ...rounds[0], rounds };
}

// =========================================================================== time until the LAST socket receives
async function last() {
  const N = cfg.sockets;
  const users = tokens.users.slice(0, N);
  const [publisher] = await connectOrDie(cfg.url, [tokens.publisher], 'publisher');
  const receivers = await connectOrDie(cfg.url, users, 'receiver');
  const room = await proto.setupRoom(publisher, receivers, { memberIds: users.map((u) => u.id), title: 'bench last' });
  let cur = -1; let got = 0; let first = 0; let lastT = 0; let done = null;
  const onMsg = (arr) => {
    const t = now();
    const text = proto.textOf(arr);
    if (typeof text !== 'string' || text.charCodeAt(0) !== 76 /* L */) return;
    if (+text.split('|', 2)[1] !== cur) return;
    if (got === 0) first = t;
    lastT = t;
    if (++got === N && done) done();
  };
  for (const c of receivers) c.on(proto.event, onMsg);
  async function one(k) {
    cur = k; got = 0;
    const t0 = now();
    const p = new Promise((r) => { done = r; });
    proto.publish(publisher, room, payload('L', k, 0, t0));
    await Promise.race([p, sleep(cfg.timeoutMs)]);
    done = null;
    return { ok: got === N, got, firstMs: got ? first - t0 : null, lastMs: got ? lastT - t0 : null };
  }
  for (let k = 0; k < 3; k++) { await one(-100 - k); await sleep(cfg.gapMs); }
  await checkpoint('start');
  const meter = lgMeter();
  const res = [];
  for (let k = 0; k < cfg.count; k++) { res.push(await one(k)); await sleep(cfg.gapMs); }
  const m = meter();
  await checkpoint('end');
  await Promise.all([publisher, ...receivers].map((c) => c.close()));
  const ok = res.filter((r) => r.ok);
  const r = {
    sockets: N, broadcasts: cfg.count, incomplete: res.length - ok.length,
    lastMs: summarize(ok.map((x) => x.lastMs)), firstMs: summarize(ok.map((x) => x.firstMs)), ...m,
  };
  log(`last-socket: p50 ${r.lastMs.p50 && r.lastMs.p50.toFixed(1)} ms p99 ${r.lastMs.p99 && r.lastMs.p99.toFixed(1)} ms (${r.incomplete} incomplete) lg cpu ${m.lgCpuPct.toFixed(0)}%`);
  return r;
}

// =========================================================================== churn soak
async function churn() {
  const C = cfg.concurrency;
  const users = tokens.users.slice(0, C);
  const [publisher] = await connectOrDie(cfg.url, [tokens.publisher], 'publisher');
  const room = await proto.setupRoom(publisher, [], { memberIds: users.map((u) => u.id), title: 'bench churn', roomName: 'churn' });
  await checkpoint('start');
  const meter = lgMeter();
  const t0 = now();
  const deadline = t0 + cfg.durationS * 1000;
  let cycles = 0; let errors = 0; const errSamples = []; const cycleMs = [];
  // each worker paces itself so that all together attempt at most cfg.rate cycles/s (0 = as fast as possible)
  const slotMs = cfg.rate > 0 ? (1000 * C) / cfg.rate : 0;
  async function worker(w) {
    let k = 0;
    let next = t0 + (slotMs * w) / C;
    while (now() < deadline) {
      if (slotMs) { const wait = next - now(); next += slotMs; if (wait > 0) await sleep(wait); if (now() >= deadline) break; }
      const tc = now();
      const c = new SioClient(cfg.url, proto.namespace, proto.auth(users[w].token));
      try {
        await c.connect();
        await proto.joinOne(c, room);
        const text = payload('C', w, k++, tc);
        const got = new Promise((resolve) => c.on(proto.event, (arr) => { if (proto.textOf(arr) === text) resolve(true); }));
        proto.publish(c, room, text);
        if (!(await Promise.race([got, sleep(cfg.timeoutMs).then(() => false)]))) throw new Error('own message not received');
        await c.close();
        cycles++;
        if (cycleMs.length < 2e6) cycleMs.push(now() - tc);
      } catch (e) {
        errors++;
        if (errSamples.length < 5) errSamples.push(String(e.message || e));
        try { c.ws && c.ws.terminate(); } catch (_) {}
        await sleep(100);
      }
    }
  }
  const prog = setInterval(() => {
    const el = (now() - t0) / 1000;
    out({ type: 'progress', elapsedS: el, cycles, errors });
    log(`churn ${el.toFixed(0)}s: ${cycles} cycles (${(cycles / el).toFixed(0)}/s), ${errors} errors`);
  }, cfg.progressMs || 10000);
  await Promise.all(Array.from({ length: C }, (_, w) => worker(w)));
  clearInterval(prog);
  const m = meter();
  const el = (now() - t0) / 1000;
  await checkpoint('end');
  await publisher.close();
  await sleep(cfg.settleMs);
  await checkpoint('idle');
  return { concurrency: C, targetRate: cfg.rate, durationS: el, cycles, cyclesPerS: cycles / el, errors, errorSamples: errSamples, cycleMs: summarize(cycleMs), ...m };
}

const scenarios = { fanout, memory, last, churn };
scenarios[cfg.scenario]().then((r) => {
  out({ type: 'result', scenario: cfg.scenario, ...r });
  process.exit(0);
}, (e) => {
  log('FAILED: ' + (e.stack || e));
  out({ type: 'error', message: String(e.message || e) });
  process.exit(1);
});
