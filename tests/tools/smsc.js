// An SMSC for AgentMessage's SMPP interoperability test, built on the `smpp` npm package (an
// implementation AgentMessage did not write). It binds any transceiver, accepts every submit_sm
// with a fresh message id, reports each PDU as one JSON line on stdout (the short message as the
// package decodes it), sends a delivery receipt for each accepted part, and sends a message from a
// recipient when told so on stdin. Like an SMSC, it keeps a receipt until a deliver_sm_resp
// accepts it: one whose session closed first goes out again on the next bound session, one
// refused goes out again shortly: {"inbound": {"from": "15550001111", "to": "15551112222",
// "text": "STOP"}}.
//
//   node smsc.js [PORT] [--no-receipts] [--quiet] [--respond-after MS]
//     PORT 0 or nothing: any free port; the first line says which.
//     --no-receipts: accept without sending receipts (the SMPP throughput benchmark).
//     --quiet: report only binds, unbinds and a count of submit_sm every second.
//     --respond-after MS: answer each submit_sm MS milliseconds after it arrived (a slow SMSC:
//       the ESME's window fills, and a backlog waits behind it).
//     --first-id N: the first message id (by default 0x1000; an SMSC started again on the same
//       port is given ids it did not hand out before).
'use strict';
const readline = require('readline');
const smpp = require('smpp');

const args = process.argv.slice(2);
const sendReceipts = !args.includes('--no-receipts');
const quiet = args.includes('--quiet');
const respondAfterAt = args.indexOf('--respond-after');
const respondAfter = respondAfterAt >= 0 ? Number(args[respondAfterAt + 1]) : 0;
const firstIdAt = args.indexOf('--first-id');
const valueAt = (i) => (respondAfterAt >= 0 && i === respondAfterAt + 1) || (firstIdAt >= 0 && i === firstIdAt + 1);
const port = Number(args.find((a, i) => !a.startsWith('--') && !valueAt(i)) || 0);
const sessions = new Set();
let submits = 0;
// Receipts waiting for a bound session, and those sent but not yet acknowledged, per session.
const waiting = [];
const unacknowledged = new Map();

function deliverReceipt(preferred, receipt) {
  const session = sessions.has(preferred) ? preferred : sessions.values().next().value;
  if (!session) {
    waiting.push(receipt);
    return;
  }
  const open = unacknowledged.get(session) || new Set();
  unacknowledged.set(session, open);
  open.add(receipt);
  const sent = session.deliver_sm(receipt, (resp) => {
    open.delete(receipt);
    // Refused (the ESME could not store it): delivered again shortly, as an SMSC retries.
    if (resp.command_status !== 0) setTimeout(() => deliverReceipt(null, receipt), 100);
  });
  if (sent === false) {
    // The session's socket no longer writes: wait for the next bound session.
    open.delete(receipt);
    waiting.push(receipt);
  }
}

function sessionGone(session) {
  sessions.delete(session);
  const open = unacknowledged.get(session);
  unacknowledged.delete(session);
  if (open) for (const receipt of open) deliverReceipt(null, receipt);
}
if (quiet) {
  setInterval(() => report({ event: 'submits', count: submits }), 1000).unref();
}
let nextId = firstIdAt >= 0 ? Number(args[firstIdAt + 1]) : 0x1000;

function report(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function pad(n) {
  return String(n).padStart(2, '0');
}

function smppDate(d) {
  return pad(d.getUTCFullYear() % 100) + pad(d.getUTCMonth() + 1) + pad(d.getUTCDate()) +
    pad(d.getUTCHours()) + pad(d.getUTCMinutes());
}

const server = smpp.createServer({ debug: false }, (session) => {
  session.on('error', (err) => report({ event: 'error', message: String(err) }));
  session.on('bind_transceiver', (pdu) => {
    sessions.add(session);
    report({ event: 'bind_transceiver', system_id: pdu.system_id, interface_version: pdu.interface_version });
    session.send(pdu.response());
    for (const receipt of waiting.splice(0)) deliverReceipt(session, receipt);
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    report({ event: 'unbind' });
    session.send(pdu.response());
    sessionGone(session);
    session.close();
  });
  session.on('close', () => sessionGone(session));
  session.on('deliver_sm_resp', (pdu) => report({ event: 'deliver_sm_resp', command_status: pdu.command_status }));
  session.on('submit_sm', (pdu) => {
    const id = nextId++;
    // Hexadecimal in submit_sm_resp; the receipt text writes it in decimal for odd ids, as some
    // SMSCs do.
    const messageId = id.toString(16).toUpperCase();
    const sm = pdu.short_message || {};
    submits += 1;
    if (!quiet) report({
      event: 'submit_sm',
      message_id: messageId,
      source_addr_ton: pdu.source_addr_ton,
      source_addr_npi: pdu.source_addr_npi,
      source_addr: pdu.source_addr,
      dest_addr_ton: pdu.dest_addr_ton,
      dest_addr_npi: pdu.dest_addr_npi,
      destination_addr: pdu.destination_addr,
      esm_class: pdu.esm_class,
      data_coding: pdu.data_coding,
      registered_delivery: pdu.registered_delivery,
      validity_period: pdu.validity_period,
      udh: (sm.udh || []).map((u) => Buffer.from(u).toString('hex')),
      message: typeof sm.message === 'string' ? sm.message : Buffer.from(sm.message || []).toString('hex'),
    });
    const answer = () => session.send(pdu.response({ message_id: messageId }));
    if (respondAfter > 0) setTimeout(answer, respondAfter);
    else answer();
    if (!sendReceipts) return;
    setTimeout(() => {
      const now = new Date();
      const written = id % 2 === 1 ? String(id) : messageId;
      const receipt = {
        source_addr: pdu.destination_addr,
        destination_addr: pdu.source_addr,
        esm_class: 0x04,
        short_message: `id:${written} sub:001 dlvrd:001 submit date:${smppDate(now)} done date:${smppDate(now)} stat:DELIVRD err:000 text:`,
      };
      if (id % 2 === 0) {
        receipt.receipted_message_id = messageId;
        receipt.message_state = 2; // DELIVERED
      }
      deliverReceipt(session, receipt);
    }, 20 + respondAfter);
  });
});

server.listen(port, '127.0.0.1', () => {
  report({ event: 'listening', port: server.address().port });
});

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let command;
  try {
    command = JSON.parse(line);
  } catch (err) {
    report({ event: 'error', message: `not JSON: ${line}` });
    return;
  }
  if (command.inbound) {
    for (const session of sessions) {
      session.deliver_sm({
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: command.inbound.from,
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: command.inbound.to,
        short_message: command.inbound.text,
      });
      report({ event: 'inbound_sent' });
      break;
    }
  }
});
