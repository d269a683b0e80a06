/**
 * Talking to the person while stdout is captured by a shell hook. Questions go to the
 * controlling terminal (`/dev/tty`; Windows `CONIN$`/`CONOUT$`), else to stderr with stdin
 * when stdin is a terminal. Deno's prompt() writes to stdout and is never used.
 * This is the only module that touches the terminal.
 */
import { Cancelled } from "./errors.ts";
import { isWindows } from "./paths.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface Terminal {
  write(text: string): void;
  /** One line without its newline; Cancelled on Ctrl-C, Ctrl-D or end of input. */
  readLine(): Promise<string>;
  close(): void;
}

class TtyTerminal implements Terminal {
  constructor(
    private readonly input: { read(p: Uint8Array): Promise<number | null> },
    private readonly output: { writeSync(p: Uint8Array): number },
    private readonly closer: () => void,
  ) {}

  write(text: string) {
    const bytes = enc.encode(text);
    let done = 0;
    while (done < bytes.length) done += this.output.writeSync(bytes.subarray(done));
  }

  async readLine(): Promise<string> {
    // Canonical mode: the terminal edits the line and turns Ctrl-C into SIGINT, which we
    // catch so the shell gets a clean exit 130 and the terminal is left as it was.
    let interrupted = () => {};
    const onInt = () => interrupted();
    const cancelled = new Promise<never>((_, reject) => {
      interrupted = () => reject(new Cancelled());
    });
    cancelled.catch(() => {});
    Deno.addSignalListener("SIGINT", onInt);
    try {
      const chunks: number[] = [];
      const buf = new Uint8Array(256);
      while (true) {
        const n = await Promise.race([this.input.read(buf), cancelled]);
        if (n === null || n === 0) throw new Cancelled();
        for (const b of buf.subarray(0, n)) {
          if (b === 0x0a || b === 0x0d) return dec.decode(new Uint8Array(chunks));
          if (b === 0x03 || b === 0x04) throw new Cancelled();
          chunks.push(b);
        }
        if (chunks.length > 4096) throw new Cancelled();
      }
    } catch (e) {
      if (e instanceof Cancelled) this.write("\n");
      throw e;
    } finally {
      Deno.removeSignalListener("SIGINT", onInt);
    }
  }

  close() {
    this.closer();
  }
}

/** The person's terminal, or null when there is none to ask on. */
export function openTerminal(): Terminal | null {
  try {
    if (isWindows) {
      const input = Deno.openSync("CONIN$", { read: true, write: true });
      const output = Deno.openSync("CONOUT$", { read: true, write: true });
      return new TtyTerminal(input, output, () => {
        input.close();
        output.close();
      });
    }
    const tty = Deno.openSync("/dev/tty", { read: true, write: true });
    return new TtyTerminal(tty, tty, () => tty.close());
  } catch {
    if (Deno.stdin.isTerminal()) return new TtyTerminal(Deno.stdin, Deno.stderr, () => {});
    return null;
  }
}

/** Colour only on a terminal and never with NO_COLOR. */
export function paint(text: string, code: number, stream: { isTerminal(): boolean }): string {
  if (Deno.env.get("NO_COLOR") || !stream.isTerminal()) return text;
  return `\x1b[${code}m${text}\x1b[0m`;
}

/** A notice for the person: stderr, which the hooks leave on the terminal. */
export function notice(text: string): void {
  Deno.stderr.writeSync(enc.encode(`${paint("stsh:", 2, Deno.stderr)} ${text}\n`));
}
