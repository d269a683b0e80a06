import assert from "node:assert/strict";
import { sha256Hex } from "../lib/sha256.ts";

async function subtle(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("sha256Hex: FIPS 180-4 examples", () => {
  assert.equal(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(
    sha256Hex("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
});

Deno.test("sha256Hex: the same digest as WebCrypto at every length around the block edges", async () => {
  // Lengths 0..200 cross the one-, two- and three-block padding edges (55/56, 119/120 bytes);
  // multi-byte characters, NULs and newlines as paths and tag contents can hold them.
  const chars = ["a", "/", "\n", "\0", "é", "€", "𝄞", "ü", "'"];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
  for (let len = 0; len <= 200; len++) {
    let s = "";
    for (let i = 0; i < len; i++) s += chars[next() % chars.length];
    assert.equal(sha256Hex(s), await subtle(s), `length ${len}: ${JSON.stringify(s)}`);
  }
  const long = "x".repeat(100_000);
  assert.equal(sha256Hex(long), await subtle(long));
});
