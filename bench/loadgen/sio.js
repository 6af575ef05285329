'use strict';
// Minimal Socket.IO v5 / Engine.IO v4 client over a raw WebSocket (websocket transport only,
// text packets only). Lean on purpose: one ws frame -> one string -> one JSON.parse.
const WebSocket = require('ws');

class SioClient {
  constructor(baseUrl, nsp, auth) {
    this.url = baseUrl.replace(/^http/, 'ws').replace(/\/$/, '') + '/socket.io/?EIO=4&transport=websocket';
    this.nsp = nsp || '/';
    this.prefix = this.nsp === '/' ? '' : this.nsp + ',';
    this.auth = auth;
    this.handlers = Object.create(null);
    this.acks = new Map();
    this.ackId = 0;
    this.connected = false;
    this.ws = null;
    this.onclose = null;
    // Optional hot-path hook: called with the raw JSON body of every EVENT packet without an ack id;
    // returning true means "handled" and skips JSON.parse (used for the latency probes).
    this.onRawEvent = null;
  }

  on(event, fn) { this.handlers[event] = fn; return this; }

  connect(timeoutMs = 20000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { fail(new Error('connect timeout')); }, timeoutMs);
      const fail = (err) => {
        if (this._pending) { this._pending = null; clearTimeout(timer); try { this.ws.terminate(); } catch (_) {} reject(err); }
      };
      this._pending = { resolve: (sid) => { clearTimeout(timer); this._pending = null; resolve(sid); }, reject: fail };
      const ws = this.ws = new WebSocket(this.url, { perMessageDeflate: false, skipUTF8Validation: true });
      ws.on('message', (data) => this._onFrame(data.toString()));
      ws.on('error', (err) => fail(err));
      ws.on('close', () => {
        this.connected = false;
        fail(new Error('closed during connect'));
        for (const [, cb] of this.acks) cb(undefined, new Error('closed'));
        this.acks.clear();
        if (this.onclose) this.onclose();
      });
    });
  }

  _onFrame(s) {
    switch (s.charCodeAt(0)) {
      case 52: return this._onPacket(s); // '4' message
      case 50: return this.ws.send('3'); // '2' ping -> pong
      case 48: // '0' open
        this.ws.send('40' + this.prefix + (this.auth ? JSON.stringify(this.auth) : ''));
        return;
      case 49: return this.ws.close(); // '1' close
      default: return; // noop etc.
    }
  }

  _onPacket(s) {
    // s = '4' + <type> [<nsp>,] [<ackid>] [<json>]
    const type = s.charCodeAt(1) - 48;
    let i = 2;
    if (s.charCodeAt(i) === 47 /* '/' */) {
      const comma = s.indexOf(',', i);
      i = comma < 0 ? s.length : comma + 1;
    }
    let id = -1;
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      id = (id < 0 ? 0 : id * 10) + (c - 48);
      i++;
    }
    const body = i < s.length ? s.slice(i) : '';
    switch (type) {
      case 2: { // EVENT
        if (id < 0 && this.onRawEvent && this.onRawEvent(body)) return;
        const arr = JSON.parse(body);
        const h = this.handlers[arr[0]];
        if (h) h(arr);
        if (id >= 0) this.ws.send('43' + this.prefix + id + '[]');
        return;
      }
      case 3: { // ACK
        const cb = this.acks.get(id);
        if (cb) { this.acks.delete(id); cb(JSON.parse(body)); }
        return;
      }
      case 0: // CONNECT
        this.connected = true;
        if (this._pending) this._pending.resolve(body ? JSON.parse(body).sid : null);
        return;
      case 4: // CONNECT_ERROR
        if (this._pending) this._pending.reject(new Error('connect_error ' + body));
        return;
      case 1: // DISCONNECT (namespace)
        this.connected = false;
        this.ws.close();
        return;
      default:
        return; // binary packets are not used by the bench
    }
  }

  emit(event, ...args) {
    this.ws.send('42' + this.prefix + JSON.stringify([event, ...args]));
  }

  // Send with an ack id but do not wait for / keep track of the ack (like a client that passes a no-op callback).
  emitFireAck(event, ...args) {
    this.ws.send('42' + this.prefix + (++this.ackId) + JSON.stringify([event, ...args]));
  }

  emitWithAck(event, ...args) {
    const timeoutMs = 30000;
    return new Promise((resolve, reject) => {
      const id = ++this.ackId;
      const timer = setTimeout(() => { this.acks.delete(id); reject(new Error(`ack timeout for ${event}`)); }, timeoutMs);
      this.acks.set(id, (args, err) => { clearTimeout(timer); if (err) reject(err); else resolve(args[0]); });
      this.ws.send('42' + this.prefix + id + JSON.stringify([event, ...args]));
    });
  }

  close() {
    return new Promise((resolve) => {
      if (!this.ws || this.ws.readyState === WebSocket.CLOSED) return resolve();
      this.ws.once('close', () => resolve());
      try { if (this.connected) this.ws.send('41' + this.prefix); } catch (_) {}
      this.ws.close();
    });
  }
}

module.exports = { SioClient };
