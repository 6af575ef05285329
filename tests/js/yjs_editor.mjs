// An official Yjs editor of one worksheet assignment over the official socket.io-client.
//
//   node yjs_editor.mjs '{"url", "token", "assignmentId", "edits", "seed", "textField", "choiceField",
//                         "options", "pauseMs"}'
//
// Opens the document, makes `edits` random edits (text inserts and deletes in the text field, choice changes),
// each sent as `doc:update` and acknowledged, while applying every `doc:updated` it receives. Prints
// {"event": "edited", acked, refused} when its edits are acknowledged; on the stdin line "finish" it waits until
// no update has arrived for a second and prints {"event": "final", json, update} (update: the whole document).
import * as Y from "yjs";
import { io } from "socket.io-client";
import readline from "node:readline";

const args = JSON.parse(process.argv[2]);
const doc = new Y.Doc();
const responses = doc.getMap("responses");
const say = (message) => process.stdout.write(JSON.stringify(message) + "\n");
const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const unb64 = (text) => new Uint8Array(Buffer.from(text, "base64"));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let seed = args.seed >>> 0;
const random = () => {  // mulberry32: the same edits for the same seed
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = (items) => items[Math.floor(random() * items.length)];
const WORDS = ["calm", "tired", " ", "é", "ß", "ok", "\n", "walk", "ça"];

let lastRemote = Date.now();
const socket = io(args.url + "/worksheets", { auth: { token: args.token }, transports: ["websocket"] });
socket.on("doc:updated", (data) => {
  if (data.assignmentId !== args.assignmentId) return;
  Y.applyUpdate(doc, unb64(data.update), "remote");
  lastRemote = Date.now();
});

const outgoing = [];
doc.on("update", (update, origin) => {
  if (origin !== "remote" && origin !== "server") outgoing.push(update);
});

async function send(update) {  // sent again while the answer is `unavailable` (a stored repeat is a no-op)
  for (let attempt = 0; attempt < 10; attempt++) {
    const ack = await socket.timeout(10000).emitWithAck("doc:update", { assignmentId: args.assignmentId,
                                                                      update: b64(update) });
    if (ack.ok) return true;
    if (ack.error.code !== "unavailable") return false;
    await sleep(200);
  }
  return false;
}

function randomEdit() {
  const text = responses.get(args.textField);
  const roll = random();
  if (roll < 0.6 || text.length === 0) {
    text.insert(Math.floor(random() * (text.length + 1)), pick(WORDS));
  } else if (roll < 0.85) {
    const at = Math.floor(random() * text.length);
    text.delete(at, Math.min(text.length - at, 1 + Math.floor(random() * 3)));
  } else {
    responses.set(args.choiceField, pick(args.options));
  }
}

async function main() {
  await new Promise((resolve, reject) => { socket.once("connect", resolve); socket.once("connect_error", reject); });
  const opened = await socket.timeout(10000).emitWithAck("assignment:open", { assignmentId: args.assignmentId });
  if (!opened.ok) throw new Error(JSON.stringify(opened));
  Y.applyUpdate(doc, unb64(opened.data.update), "server");
  let acked = 0, refused = 0;
  for (let n = 0; n < args.edits; n++) {
    randomEdit();
    while (outgoing.length) {
      if (await send(outgoing.shift())) acked++; else refused++;
    }
    await sleep(args.pauseMs);
  }
  say({ event: "edited", acked, refused });
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  if (line.trim() !== "finish") return;
  while (Date.now() - lastRemote < 1000) await sleep(100);
  say({ event: "final", json: responses.toJSON(), update: b64(Y.encodeStateAsUpdate(doc)) });
  socket.disconnect();
  process.exit(0);
});

main().catch((error) => { say({ event: "error", message: String(error) }); process.exit(1); });
