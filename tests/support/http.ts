/** HTTP written by hand, for the endpoint's door: Host, method and framing exactly as given. */

export interface Answer {
  status: number;
  /** The status line and headers, lower-cased. */
  head: string;
  body: string;
  /** Milliseconds from connect to the end of the answer. */
  ms: number;
}

/**
 * Send `bytes` to 127.0.0.1:`port` (or `hostname`) as they are and read the answer to the
 * end of its body (content-length: Deno.serve keeps a connection open) or of the connection.
 */
export async function rawHttp(
  port: number,
  bytes: Uint8Array | string,
  hostname = "127.0.0.1",
): Promise<Answer> {
  const t0 = performance.now();
  const c = await Deno.connect({ hostname, port });
  try {
    await c.write(typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes);
    const dec = new TextDecoder();
    let text = "";
    const buf = new Uint8Array(16384);
    while (true) {
      const split = text.indexOf("\r\n\r\n");
      const length = Number(text.slice(0, split).match(/\r\ncontent-length: (\d+)/i)?.[1]);
      if (split >= 0 && text.length - split - 4 >= length) break;
      const n = await c.read(buf).catch(() => null);
      if (n === null) break;
      text += dec.decode(buf.subarray(0, n));
    }
    const split = text.indexOf("\r\n\r\n");
    return {
      status: Number(text.match(/^HTTP\/1\.[01] (\d{3})/)?.[1] ?? 0),
      head: text.slice(0, split).toLowerCase(),
      body: text.slice(split + 4),
      ms: performance.now() - t0,
    };
  } finally {
    c.close();
  }
}
