// WhatsApp clients from npm pointed at Kirim's Graph surface, with only the base URL and the token
// changed from what they send to Meta. One call per run:
//
//     KIRIM_URL=http://127.0.0.1:8000 KIRIM_KEY=kirim_live_... node tests/node/clients.mjs CLIENT CALL 'JSON'
//
// prints what the call returned (or the error it threw, as {"thrown": ...}) as one JSON line.
import GreatDetail from "@great-detail/whatsapp";
import { WhatsAppClient } from "@kapso/whatsapp-cloud-api";
import { WhatsAppAPI } from "whatsapp-api-js";
import { Reaction, Text } from "whatsapp-api-js/messages";

const { KIRIM_URL, KIRIM_KEY } = process.env;
const VERSION = "v23.0";

function whatsappApiJs() {
  // Its Graph host is fixed; a fetch of our own (its `ponyfill.fetch` option) sends the calls to Kirim.
  const toKirim = (url, init) => fetch(String(url).replace("https://graph.facebook.com", KIRIM_URL), init);
  return new WhatsAppAPI({ token: KIRIM_KEY, v: VERSION, secure: false, ponyfill: { fetch: toKirim } });
}

const kapso = () => new WhatsAppClient({ baseUrl: KIRIM_URL, graphVersion: VERSION, accessToken: KIRIM_KEY });

const greatDetail = () =>
  new GreatDetail({ baseUrl: KIRIM_URL, graphVersion: VERSION, request: { headers: { Authorization: `Bearer ${KIRIM_KEY}` } } });

const base64 = async (response) => Buffer.from(await response.arrayBuffer()).toString("base64");

const CALLS = {
  "whatsapp-api-js": {
    send_text: ({ phone, to, body }) => whatsappApiJs().sendMessage(phone, { phone: to }, new Text(body)),
    react: ({ phone, to, wamid, emoji }) => whatsappApiJs().sendMessage(phone, { phone: to }, new Reaction(wamid, emoji)),
    mark_read: ({ phone, wamid, typing }) => whatsappApiJs().markAsRead(phone, wamid, typing),
    download: async ({ media }) => {
      const api = whatsappApiJs();
      const described = await api.retrieveMedia(media);
      return { described, bytes: await base64(await api.fetchMedia(described.url)) };
    },
  },
  kapso: {
    send_text: ({ phone, to, body }) => kapso().messages.sendText({ phoneNumberId: phone, to, body }),
    mark_read: ({ phone, wamid, typing }) =>
      kapso().messages.markRead({ phoneNumberId: phone, messageId: wamid, ...(typing ? { typingIndicator: { type: typing } } : {}) }),
    download: async ({ media }) => ({ bytes: await base64(await kapso().media.download({ mediaId: media, as: "response" })) }),
  },
  "great-detail": {
    send_text: ({ phone, to, body }) =>
      greatDetail().message.createMessage({ phoneNumberID: phone, to, type: "text", text: { body } }).json(),
    mark_read: ({ phone, wamid }) => greatDetail().message.createStatus({ phoneNumberID: phone, message_id: wamid, status: "read" }).json(),
  },
};

const [client, call, args] = process.argv.slice(2);
try {
  console.log(JSON.stringify(await CALLS[client][call](JSON.parse(args || "{}"))));
} catch (error) {
  const answer = error.response ? { status: error.response.status, url: error.request?.url, body: error.data } : {};
  console.log(JSON.stringify({ thrown: { name: error.name, message: error.message, ...answer } }));
}
