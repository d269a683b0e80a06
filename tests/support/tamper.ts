/**
 * A proxy in front of the STS emulator that passes requests through untouched (the Host
 * header too, so the emulator's SigV4 check still holds) and lets a test rewrite answers:
 * STS that issues a 300 KB session token, a token with shell characters, an error message
 * with terminal escapes. The emulator itself stays honest.
 */
import http from "node:http";

export type Rewrite = (answer: { action: string; status: number; body: string }) => {
  status: number;
  body: string;
};

export interface Tamper {
  url: string;
  /** The rewrite for the next answers (none: pass through). */
  rewrite?: Rewrite;
  close(): Promise<void>;
}

export function tamper(target: string): Tamper {
  const t = new URL(target);
  const self: Tamper = {
    url: "",
    close: () => server.shutdown(),
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = new Uint8Array(await req.arrayBuffer());
    const action = new URLSearchParams(new TextDecoder().decode(body)).get("Action") ?? "";
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => headers[k] = v);
    const answer = await new Promise<{ status: number; body: string; type: string }>(
      (resolve, reject) => {
        const r = http.request({
          host: t.hostname,
          port: Number(t.port),
          path: new URL(req.url).pathname,
          method: req.method,
          headers,
        }, (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c) => text += c);
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 500,
              body: text,
              type: String(res.headers["content-type"] ?? "text/xml"),
            }));
        });
        r.on("error", reject);
        r.end(body);
      },
    );
    const out = self.rewrite ? self.rewrite({ action, ...answer }) : answer;
    return new Response(out.body, {
      status: out.status,
      headers: { "content-type": answer.type, "x-amzn-requestid": crypto.randomUUID() },
    });
  });
  self.url = `http://127.0.0.1:${server.addr.port}`;
  return self;
}
