// Use the TypeScript client generated from openapi/openapi.json (openapi-typescript types,
// openapi-fetch calls), without edits: push two typed records, then read them back through
// history, the profile and the change feed. `tsc --strict` proves the typing (a record is
// narrowed to its own type by `record_type`); running it proves the round trip.
//
// Usage: node dist/check.js BASE_URL TOKEN MUNICIPALITY
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

declare const process: { argv: string[] }; // (Node's; no @types/node needed for one field)

type Schemas = components["schemas"];
type WellbeingCheck = Schemas["SchoolWellbeingCheckRecord"];

const [baseUrl, token, town] = process.argv.slice(2) as [string, string, string];
const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
const child = `${town}9999920`; // a synthetic child made up for this check
const reading = { "X-Purpose": "case_handling", "X-Actor": "ci-typescript-client" } as const;

function check(condition: unknown, message: string): asserts condition {
  if (!condition) {
    throw new Error(message);
  }
}

const subject: Schemas["SubjectRecord"] = {
  record_type: "subject",
  schema_version: "1.0",
  source_record_id: "ts-client-subject",
  subject: { resident_no: child },
  effective_date: "2022-04-01",
  household_no: "HTS1",
  name: "型付 花子",
  birth_date: "2022-04-01",
  sex: 2,
  role: "child",
};
const wellbeing: WellbeingCheck = {
  record_type: "school-wellbeing-check",
  schema_version: "1.0",
  source_record_id: "ts-client-wellbeing",
  subject: { resident_no: child },
  effective_date: "2025-10-01",
  checked_on: "2025-10-01",
  instrument: "こころの健康観察",
  result: "watch",
};

const pushed = await client.POST("/v1/municipalities/{code}/records", {
  params: { path: { code: town } },
  body: { records: [subject, wellbeing] },
});
check(pushed.data, `push answered ${pushed.response.status}`);
check(pushed.data.rejected === 0, JSON.stringify(pushed.data));

// The record type decides the type: after the test of `record_type`, `record.result` is the
// code list of the wellbeing check (a compile error otherwise).
function asWellbeing(record: Schemas["Record"] | null | undefined): WellbeingCheck {
  check(record && record.record_type === "school-wellbeing-check", "not a wellbeing check");
  const result: "no_concern" | "watch" | "concern" = record.result;
  check(result === "watch", `result ${result}`);
  return record;
}

const history = await client.GET("/v1/municipalities/{code}/records/{source_record_id}/history", {
  params: { path: { code: town, source_record_id: "ts-client-wellbeing" }, header: reading },
});
check(history.data, `history answered ${history.response.status}`);
const back = asWellbeing(history.data.versions.at(-1)?.record);
check(JSON.stringify(sorted(back)) === JSON.stringify(sorted(wellbeing)), "history differs");

const profile = await client.GET("/v1/municipalities/{code}/subjects/{resident_no}", {
  params: { path: { code: town, resident_no: child }, header: reading },
});
check(profile.data, `profile answered ${profile.response.status}`);
const name: string = profile.data.subject.name;
check(name === "型付 花子", `subject ${name}`);
asWellbeing(profile.data.records.find((r) => r.record_type === "school-wellbeing-check")?.record);

let cursor = 0;
let found: Schemas["Record"] | null | undefined;
for (;;) {
  const page = await client.GET("/v1/municipalities/{code}/changes", {
    params: { path: { code: town }, query: { after: cursor, limit: 500 }, header: reading },
  });
  check(page.data, `changes answered ${page.response.status}`);
  for (const change of page.data.changes) {
    if (change.source_record_id === "ts-client-wellbeing") {
      found = change.record;
    }
  }
  if (page.data.next_cursor === cursor) {
    break;
  }
  cursor = page.data.next_cursor;
}
asWellbeing(found);
console.log("generated TypeScript client: typed records pushed and read back (history, profile, change feed)");

function sorted(value: object): [string, unknown][] {
  return Object.entries(value).sort(([a], [b]) => a.localeCompare(b));
}
