// Exercises a TypeScript client (openapi-fetch over the checked-in openapi/agentmessage.d.ts,
// which openapi-typescript generates from the spec) against a running AgentMessage server: the
// seed's example send, reading it back, a two-page walk with a cursor, and the typed 422 and 453
// errors. Compiled with `tsc --strict` and run by the `clients` cargo test with BASE_URL, API_KEY,
// FROM, TO and NOT_OPTED_IN set; any failed check exits non-zero.

import createClient from "openapi-fetch";
import type { components, paths } from "./agentmessage.js";

type ErrorEnvelope = components["schemas"]["ErrorEnvelope"];
type MessageView = components["schemas"]["MessageView"];

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`typescript client: ${what}`);
}

const FROM = env("FROM");
const TO = env("TO");
const client = createClient<paths>({
  baseUrl: env("BASE_URL"),
  headers: { Authorization: `Bearer ${env("API_KEY")}` },
});

async function main(): Promise<void> {
  // The seed's example.
  const sent = await client.POST("/v1/messages", {
    body: { from: FROM, to: TO, text: "hello from agentmessage", priority: "default", tag: "order-7421" },
  });
  check(sent.response.status === 202, `send answered ${sent.response.status}`);
  check(sent.data !== undefined, "send has a body");
  const message: MessageView = sent.data.data;
  check(message.status === "queued", `status ${message.status}`);
  check(message.tag === "order-7421" && message.from === FROM && message.to === TO, "echoed fields");
  check(message.error_code === null, "a queued message has no error code");

  // Read it back.
  const read = await client.GET("/v1/messages/{id}", { params: { path: { id: message.id } } });
  check(read.data !== undefined, `read back answered ${read.response.status}`);
  check(JSON.stringify(read.data.data) === JSON.stringify(message), "read back differs from the send");

  // Two more, then a walk of two pages of two.
  for (const i of [0, 1]) {
    const more = await client.POST("/v1/messages", { body: { from: FROM, to: TO, text: `page walk ${i}` } });
    check(more.response.status === 202, `send ${i} answered ${more.response.status}`);
  }
  const first = await client.GET("/v1/messages", { params: { query: { limit: 2 } } });
  check(first.data !== undefined, "first page");
  check(first.data.data.length === 2 && first.data.has_more, "first page holds two and more follow");
  const cursor = first.data.next_cursor;
  check(cursor !== null, "first page has a cursor");
  const second = await client.GET("/v1/messages", { params: { query: { limit: 2, cursor } } });
  check(second.data !== undefined, "second page");
  const ids = [...first.data.data, ...second.data.data].map((m) => m.id);
  check(new Set(ids).size === 3 && ids.includes(message.id), `the walk saw ${ids.join(", ")}`);
  check(!second.data.has_more, "the walk ends");

  // 422: a bad recipient, with the failing field named.
  const bad = await client.POST("/v1/messages", { body: { from: FROM, to: "555-0100", text: "hi" } });
  check(bad.response.status === 422, `422 answered ${bad.response.status}`);
  const invalid: ErrorEnvelope | undefined = bad.error;
  check(invalid !== undefined, "422 has an error body");
  check(invalid.error.code === "VALIDATION_FAILED", `422 code ${invalid.error.code}`);
  check(invalid.error.details?.["to"] === "must be E.164", "422 details");

  // 453: a recipient who never opted in.
  const refused = await client.POST("/v1/messages", {
    body: { from: FROM, to: env("NOT_OPTED_IN"), text: "hi" },
  });
  check(refused.response.status === 453, `453 answered ${refused.response.status}`);
  const consent: ErrorEnvelope | undefined = refused.error;
  check(consent !== undefined, "453 has an error body");
  check(consent.error.code === "CONSENT_REQUIRED", `453 code ${consent.error.code}`);
  check(refused.response.headers.get("x-request-id") === consent.error.request_id, "request id");

  console.log("typescript client: every check passed");
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
