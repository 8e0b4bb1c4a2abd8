// Webhook handlers from npm, each used as its library documents it, behind one node:http server:
// POST /whatsapp-api-js, /kapso and /great-detail. Each checks X-Hub-Signature-256 with its route's
// secret (SECRETS: a JSON object, route -> secret) and keeps what its library parsed; GET /received
// answers all of it. Prints "listening" once it is.
//
//     PORT=8090 SECRETS='{"kapso": "whsec_..."}' node tests/node/receivers.mjs
import { createServer } from "node:http";

import GreatDetail from "@great-detail/whatsapp";
import { normalizeWebhook, verifySignature } from "@kapso/whatsapp-cloud-api/server";
import { WhatsAppAPI } from "whatsapp-api-js/middleware/node-http";

const secrets = JSON.parse(process.env.SECRETS);
const received = []; // {library, kind: "message" | "status", id, text?, name?, status?}, in order of arrival

function whatsappApiJs(secret) {
  const api = new WhatsAppAPI({ token: "unused", appSecret: secret, v: "v23.0" });
  const keep = (record) => received.push({ library: "whatsapp-api-js", ...record });
  api.on.message = ({ message, name }) => keep({ kind: "message", id: message.id, text: message.text?.body, name });
  api.on.status = ({ id, status, contact }) => keep({ kind: "status", id, status, name: contact.profile?.name });
  return (request) => api.handle_post(request);
}

async function rawBody(request) {
  const chunks = [];
  for await (const chunk of request) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function keepEach(library, parsed) {
  for (const message of parsed.messages) {
    received.push({ library, kind: "message", id: message.id, text: message.text?.body, name: parsed.names[message.from] });
  }
  for (const status of parsed.statuses) {
    received.push({ library, kind: "status", id: status.id, status: status.status, name: parsed.names[status.recipient] });
  }
}

function kapso(secret) {
  return async (request) => {
    const body = await rawBody(request);
    if (!verifySignature({ appSecret: secret, rawBody: body, signatureHeader: request.headers["x-hub-signature-256"] })) {
      return 401;
    }
    const events = normalizeWebhook(JSON.parse(body.toString("utf8")));
    const names = Object.fromEntries(events.contacts.map((c) => [c.waId, c.profile?.name]));
    keepEach("kapso", {
      messages: events.messages,
      statuses: events.statuses.map((s) => ({ ...s, recipient: s.recipientId })),
      names,
    });
    return 200;
  };
}

function greatDetail(secret) {
  const sdk = new GreatDetail();
  return async (request) => {
    const body = (await rawBody(request)).toString("utf8");
    const event = await sdk.webhook.eventNotification({ method: request.method, query: {}, body, headers: request.headers });
    try {
      await event.verifySignature(secret);
    } catch {
      return 401;
    }
    for (const entry of event.eventNotification.entry) {
      for (const { value } of entry.changes) {
        const names = Object.fromEntries((value.contacts ?? []).map((c) => [c.wa_id, c.profile?.name]));
        const statuses = (value.statuses ?? []).map((s) => ({ ...s, recipient: s.recipient_id }));
        keepEach("great-detail", { messages: value.messages ?? [], statuses, names });
      }
    }
    return 200;
  };
}

const MAKERS = { "whatsapp-api-js": whatsappApiJs, kapso, "great-detail": greatDetail };
const handlers = Object.fromEntries(Object.entries(secrets).map(([route, secret]) => [route, MAKERS[route](secret)]));

const server = createServer(async (request, response) => {
  const route = request.url.slice(1);
  if (request.method === "GET" && route === "received") {
    response.setHeader("Content-Type", "application/json");
    response.end(JSON.stringify(received));
    return;
  }
  const handle = request.method === "POST" && handlers[route];
  try {
    response.statusCode = handle ? await handle(request) : 404;
  } catch (error) {
    console.error(error);
    response.statusCode = 500;
  }
  response.end();
});
server.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("listening"));
