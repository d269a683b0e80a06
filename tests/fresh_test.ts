import assert from "node:assert/strict";
import { isFresh, type Session } from "../lib/cache.ts";

const at = (iso: string) => Date.parse(iso);
const s = (issued: string | undefined, expiration: string): Session => ({
  accessKeyId: "ASIAEXAMPLEKEY123456",
  secretAccessKey: "x",
  sessionToken: "y",
  expiration,
  issued,
  kind: "role",
  profile: "p",
  mfa: false,
});

Deno.test("freshness: the refresh margin counts, but never more than half the lifetime", () => {
  const hour = s("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z");
  assert.equal(isFresh(hour, at("2026-01-01T00:49:00Z"), 600), true);
  assert.equal(isFresh(hour, at("2026-01-01T00:51:00Z"), 600), false);
  // 20 s credentials with a 600 s margin: fresh for their first 10 s, not dead on arrival.
  const short = s("2026-01-01T00:00:00Z", "2026-01-01T00:00:20Z");
  assert.equal(isFresh(short, at("2026-01-01T00:00:05Z"), 600), true);
  assert.equal(isFresh(short, at("2026-01-01T00:00:11Z"), 600), false);
  // Files without `issued` keep the plain margin.
  assert.equal(
    isFresh(s(undefined, "2026-01-01T00:00:20Z"), at("2026-01-01T00:00:05Z"), 600),
    false,
  );
});
