'use strict';
// Reference Socket.IO 4 server for the careline benchmark.
// Protocol (shared with bench/reference/plain_server.py):
//   namespace /bench, connect auth {token} (any non-empty string is accepted),
//   'join' (room, ack)   -> joins room, acks true
//   'publish' (room, text) -> broadcasts 'msg' (text) to everyone in room
// Env: PORT, HOST, REDIS_URL (optional: enables @socket.io/redis-adapter), REDIS_PREFIX.
// GET /health answers 200. Socket.IO options are the library defaults.
const http = require('http');
const { Server } = require('socket.io');

const PORT = parseInt(process.env.PORT || '5100', 10);
const HOST = process.env.HOST || '127.0.0.1';

const httpServer = http.createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  }
  // anything else is left to socket.io's own request listener
});
const io = new Server(httpServer);

async function main() {
  if (process.env.REDIS_URL) {
    const { createClient } = require('redis');
    const { createAdapter } = require('@socket.io/redis-adapter');
    const pub = createClient({ url: process.env.REDIS_URL });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub, { key: process.env.REDIS_PREFIX || 'careline-bench' }));
  }
  const nsp = io.of('/bench');
  nsp.use((socket, next) => {
    const token = socket.handshake.auth && socket.handshake.auth.token;
    if (typeof token !== 'string' || !token) return next(new Error('unauthorized'));
    socket.data.token = token;
    next();
  });
  nsp.on('connection', (socket) => {
    socket.on('join', (room, ack) => {
      socket.join(room);
      if (typeof ack === 'function') ack(true);
    });
    socket.on('publish', (room, text) => {
      nsp.to(room).emit('msg', text);
    });
  });
  httpServer.listen(PORT, HOST, () => {
    console.error(`node reference listening on ${HOST}:${PORT} redis=${process.env.REDIS_URL ? 'yes' : 'no'}`);
  });
}

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
main().catch((e) => { console.error(e); process.exit(1); });
