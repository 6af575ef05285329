// Line-protocol driver for the official socket.io-client, used by careline's pytest suite.
// stdin:  {"id", "op": "connect"|"emit"|"disconnect", "socket", ...} one JSON object per line
// stdout: {"id", ...reply} for commands, {"socket", "event", "data"} for every pushed event
import { io } from "socket.io-client";
import readline from "node:readline";

const sockets = new Map();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function connect(cmd) {
  const socket = io(cmd.url + cmd.namespace, {
    auth: cmd.auth ?? undefined,
    query: cmd.query ?? undefined,
    extraHeaders: cmd.extraHeaders ?? undefined,
    transports: cmd.transports ?? ["polling", "websocket"],
    reconnection: false,
    forceNew: true,
    timeout: 5000,
  });
  sockets.set(cmd.socket, socket);
  socket.onAny((event, ...args) => out({ socket: cmd.socket, event, data: args[0] ?? null }));
  socket.on("disconnect", (reason) => out({ socket: cmd.socket, event: "disconnect", data: reason }));
  socket.once("connect", () => out({ id: cmd.id, ok: true, transport: socket.io.engine.transport.name }));
  socket.once("connect_error", (err) => out({ id: cmd.id, ok: false, error: { message: err.message, data: err.data ?? null } }));
}

async function emit(cmd) {
  const socket = sockets.get(cmd.socket);
  try {
    const ack = await socket.timeout(cmd.timeout ?? 5000).emitWithAck(cmd.event, cmd.data);
    out({ id: cmd.id, ack });
  } catch (err) {
    out({ id: cmd.id, error: String(err) });
  }
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const cmd = JSON.parse(line);
  if (cmd.op === "connect") connect(cmd);
  else if (cmd.op === "emit") emit(cmd);
  else if (cmd.op === "upgraded") out({ id: cmd.id, transport: sockets.get(cmd.socket).io.engine.transport.name });
  else if (cmd.op === "disconnect") { sockets.get(cmd.socket)?.disconnect(); out({ id: cmd.id, ok: true }); }
}).on("close", () => {
  for (const s of sockets.values()) s.disconnect();
  setTimeout(() => process.exit(0), 200); // let polling sockets deliver their close packet
});
