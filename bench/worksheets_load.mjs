// Worksheet editing load: Yjs editors (official yjs + socket.io-client) typing into assignments.
//
//   node bench/worksheets_load.mjs '{"editors": [{url, token, assignmentId}], "rate": 10, "seconds": 20,
//                                    "warmup": 5, "editUpdates": false}'
//
// Every editor opens its assignment, then sends `rate` doc:update per second (one typed character each),
// paced against the clock (one 2 ms tick for all editors sends whatever came due). Measured after the warm-up: ack latency (emit -> ack) and relay latency (emit ->
// `doc:updated` at each other editor of the same assignment; the relayed update is byte-identical, so it is
// matched by its text). Prints one JSON line of percentiles.
import * as Y from "yjs";
import { io } from "socket.io-client";
import { performance } from "node:perf_hooks";

const config = JSON.parse(process.argv[2]);
const sent = new Map();  // base64 update -> send time
const acks = [], relays = [];
let measuring = false, refused = 0, sentCount = 0, answered = 0;
const codes = {};  // refusal code -> count
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const TICK_MS = 2;  // one clock for every editor: each tick sends the updates that came due (no timer per update)

function percentile(values, p) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function editor(spec) {
  const doc = new Y.Doc();
  const one = { doc, socket: null, spec, text: null, typed: null };
  if (config.editUpdates) doc.on("update", (update, origin) => { if (origin !== "remote") one.typed = update; });
  const socket = io(spec.url + "/worksheets", { auth: { token: spec.token }, transports: ["websocket"] });
  await new Promise((resolve, reject) => { socket.once("connect", resolve); socket.once("connect_error", reject); });
  socket.on("doc:updated", (data) => {
    Y.applyUpdate(doc, Buffer.from(data.update, "base64"), "remote");
    const at = sent.get(data.update);
    if (at !== undefined && measuring) relays.push(performance.now() - at);
  });
  const opened = await socket.timeout(30000).emitWithAck("assignment:open", { assignmentId: spec.assignmentId });
  if (!opened.ok) throw new Error(JSON.stringify(opened));
  Y.applyUpdate(doc, Buffer.from(opened.data.update, "base64"), "remote");
  one.socket = socket;
  one.text = doc.getMap("responses").get("story");
  return one;
}

function typeOne(one) {
  const text = one.text;
  // the update as encodeStateAsUpdate against the state before the edit: with the document's whole delete set
  // (~810 base64 characters on one editor's document, where yjs's `update` event hands ~40), as this benchmark
  // always sent
  // (`editUpdates`: the edit's own update, as yjs hands its `update` event and editors' providers send it)
  const before = config.editUpdates ? null : Y.encodeStateVector(one.doc);
  if (text.length > 400) text.delete(0, 50); else text.insert(Math.floor(Math.random() * (text.length + 1)), "a");
  const update = Buffer.from(before ? Y.encodeStateAsUpdate(one.doc, before) : one.typed).toString("base64");
  const began = performance.now();
  sent.set(update, began);
  sentCount++;
  one.socket.emit("doc:update", { assignmentId: one.spec.assignmentId, update }, (ack) => {
    answered++;
    if (!ack.ok) { refused++; codes[ack.error.code] = (codes[ack.error.code] || 0) + 1; }
    else if (measuring) acks.push(performance.now() - began);
  });
}

async function type(editors, until) {
  const interval = 1000 / config.rate;
  const now = performance.now();
  const due = editors.map(() => now + Math.random() * interval);  // each editor's next update
  while (performance.now() < until) {
    await sleep(TICK_MS);
    const at = performance.now();
    for (let i = 0; i < editors.length; i++) {
      if (due[i] <= at && at < until) { due[i] += interval; typeOne(editors[i]); }
    }
  }
}

async function main() {
  const editors = [];
  for (const spec of config.editors) editors.push(await editor(spec));
  const start = performance.now();
  const until = start + (config.warmup + config.seconds) * 1000;
  const phase = (name) => process.stdout.write(JSON.stringify({ phase: name }) + "\n");
  setTimeout(() => { measuring = true; phase("measuring"); }, config.warmup * 1000);
  const stop = setTimeout(() => { measuring = false; phase("stopped"); }, (config.warmup + config.seconds) * 1000);
  await type(editors, until);
  if (measuring) { clearTimeout(stop); measuring = false; phase("stopped"); }
  for (let waited = 0; answered < sentCount && waited < 30000; waited += 100) await sleep(100);
  if (answered < sentCount) { refused += sentCount - answered; codes.timeout = sentCount - answered; }
  await sleep(2000);
  const report = { editors: editors.length, sent: sentCount, refused, acks: acks.length, relays: relays.length,
                   ackP50: percentile(acks, 50), ackP99: percentile(acks, 99), ackMax: percentile(acks, 100),
                   relayP50: percentile(relays, 50), relayP99: percentile(relays, 99),
                   relayMax: percentile(relays, 100), seconds: config.seconds, codes };
  process.stdout.write(JSON.stringify(report) + "\n");
  for (const one of editors) one.socket.disconnect();
  process.exit(0);
}

main().catch((error) => { process.stderr.write(String(error) + "\n"); process.exit(1); });
