'use strict';
// How the load generator talks to each kind of target.  The runner (bench/targets.py)
// names the protocol; everything protocol-specific on the client side lives here.
//
// Interface:
//   namespace, event                       Socket.IO namespace; event a receiver gets per broadcast
//   auth(token)                            connect auth payload
//   textOf(arr)                            the text carried by a received event packet (arr = [event, ...args])
//   setupRoom(publisher, receivers, ctx)   -> room handle (receivers must receive every publish to it)
//   publish(publisher, room, text)         trigger one broadcast
//   joinOne(client, room)                  make one more socket a member (churn)

async function pmap(items, limit, fn) {
  let next = 0;
  const workers = [];
  for (let w = 0; w < Math.min(limit, items.length); w++) {
    workers.push((async () => { while (next < items.length) { const i = next++; await fn(items[i], i); } })());
  }
  await Promise.all(workers);
}

const bench = {
  namespace: '/bench',
  event: 'msg',
  auth: (token) => ({ token }),
  textOf: (arr) => arr[1],
  async setupRoom(publisher, receivers, ctx) {
    const room = ctx.roomName || 'fanout';
    await pmap(receivers, 200, (c) => this.joinOne(c, room));
    return room;
  },
  publish(publisher, room, text) { publisher.emit('publish', room, text); },
  async joinOne(client, room) {
    const ok = await client.emitWithAck('join', room);
    if (ok !== true) throw new Error('join failed: ' + JSON.stringify(ok));
  },
};

// careline's real chat path (binding contract, see bench/README.md).
let reqSeq = 0;
function checkAck(what, r) {
  if (!r || r.ok !== true) throw new Error(`${what} failed: ${JSON.stringify(r)}`);
  return r.data;
}
const careline = {
  namespace: '/chat',
  event: 'message:created',
  auth: (token) => ({ token }),
  textOf: (arr) => (arr[1] ? arr[1].text : undefined),
  async setupRoom(publisher, receivers, ctx) {
    // ctx.memberIds: user ids (JWT sub) of the receivers; the publisher is the therapist who opens the group.
    const conv = checkAck('conversation:open', await publisher.emitWithAck('conversation:open', {
      memberIds: ctx.memberIds, title: ctx.title || 'bench fan-out',
    }));
    const conversationId = conv.id;
    checkAck('conversation:join (publisher)', await publisher.emitWithAck('conversation:join', { conversationId }));
    await pmap(receivers, 200, async (c) => {
      checkAck('conversation:join', await c.emitWithAck('conversation:join', { conversationId }));
    });
    return conversationId;
  },
  publish(publisher, room, text) {
    publisher.emitFireAck('message:send', { conversationId: room, text, requestId: `b${process.pid}-${++reqSeq}` });
  },
  async joinOne(client, room) {
    checkAck('conversation:join', await client.emitWithAck('conversation:join', { conversationId: room }));
  },
};

// careline's transport with the reference protocol (bench/careline_server.py): one-object payloads, ack envelopes.
const carelineBench = {
  ...bench,
  publish(publisher, room, text) { publisher.emit('publish', { room, text }); },
  async joinOne(client, room) { checkAck('join', await client.emitWithAck('join', { room })); },
};

module.exports = { protocols: { bench, careline, carelineBench }, pmap };
