/**
 * Text from the outside world, made safe to print: paths, ARNs, tag contents and STS
 * messages can carry terminal escapes (a pane title changed, a line erased) or bidi
 * controls that reorder what a person reads. Every such character is shown as an escape.
 */

// C0 controls but tab and newline, DEL, C1 controls, bidi embeddings/overrides/isolates,
// line/paragraph separators and the zero-width characters that hide text.
// deno-lint-ignore no-control-regex
const HIDDEN = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;

/** `s` with every control or invisible formatting character written as `\xNN` / `\uNNNN`. */
export function visible(s: string): string {
  return s.replace(HIDDEN, (c) => {
    const n = c.charCodeAt(0);
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u${n.toString(16)}`;
  });
}

/** visible(), with newlines and tabs escaped too: for values that must stay on one line. */
export function oneLine(s: string): string {
  return visible(s).replace(/\n/g, "\\n").replace(/\t/g, "\\t");
}

/** Time left as a person reads it: "42s", "59m", "11h59m", "expired". */
export function timeLeft(ms: number): string {
  if (ms <= 0) return "expired";
  const m = Math.floor(ms / 60000);
  if (m < 1) return `${Math.floor(ms / 1000)}s`;
  if (m < 60) return `${m}m`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** Local wall-clock time, "15:02". */
export const clock = (d: Date) =>
  // Not toTimeString().slice(0, 5): naming the time zone costs ~0.2 ms on first use.
  `${d.getHours() < 10 ? "0" : ""}${d.getHours()}:${
    d.getMinutes() < 10 ? "0" : ""
  }${d.getMinutes()}`;

/**
 * Word-wrap `text` to `width` columns, never inside a word. A line's leading spaces are kept
 * on its continuation lines; a word longer than the width stands alone on its line.
 */
export function wrap(text: string, width: number): string {
  return text.split("\n").map((line) => {
    if (line.length <= width) return line;
    const indent = line.match(/^ */)![0];
    const out: string[] = [];
    let cur = "";
    for (const w of line.slice(indent.length).split(/ +/)) {
      if (cur && indent.length + cur.length + 1 + w.length > width) {
        out.push(indent + cur);
        cur = w;
      } else cur = cur ? `${cur} ${w}` : w;
    }
    out.push(indent + cur);
    return out.join("\n");
  }).join("\n");
}
