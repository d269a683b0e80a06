/**
 * Talking to the person while stdout is captured by a shell hook. Questions go to the
 * controlling terminal (`/dev/tty` through /bin/sh; Windows `CONIN$`/`CONOUT$`), else to
 * stderr with stdin when both are terminals. Deno's built-in prompt function writes to stdout
 * and is never used.
 * This is the only module that touches the terminal.
 */
import { Cancelled, EXIT, StshError } from "./errors.ts";
import { isWindows } from "./paths.ts";
import { oneLine, visible } from "./text.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface Terminal {
  /** Write text; control characters in it (from names, ARNs, STS) are shown, not obeyed. */
  write(text: string): void;
  /**
   * Show `prompt` and read one line, without its newline; Cancelled on Ctrl-C, Ctrl-D or end
   * of input. The prompt is written only once Ctrl-C is caught: a person who presses it the
   * moment the question appears gets "cancelled", not a killed process.
   */
  readLine(prompt: string): Promise<string>;
  /**
   * Show `prompt` and read a line with echo off (a passphrase, a secret key); echo is back
   * on afterwards. The prompt appears only once echo is off, so nothing typed early shows.
   */
  readSecret(prompt: string): Promise<string>;
  close(): void;
}

/**
 * From the first question on, Ctrl-C never kills this process: it cancels the question being
 * read (each read listens for it), and otherwise waits for what is under way. Without this, a
 * second SIGINT — the shells' own, after their trap ran — killed the process between the
 * cancelled read and its "cancelled" line (seen in zsh and fish under load), and one pressed
 * after a code was typed would abandon the STS call that spends it. Every wait after a
 * question is bounded (STS calls, locks, helpers), so nothing hangs on it.
 */
let holding = false;
function holdInterrupts(): void {
  if (holding) return;
  holding = true;
  // Except where the shell needs the process gone at once (exitAtOnceOnCancel: pwsh).
  Deno.addSignalListener("SIGINT", () => {
    if (exitAtOnce) Deno.exit(EXIT.cancelled);
  });
}

class TtyTerminal implements Terminal {
  constructor(
    private readonly input: { read(p: Uint8Array): Promise<number | null> },
    private readonly output: { writeSync(p: Uint8Array): number },
    private readonly closer: () => void,
    /** Raw mode on/off for the input, when it is a terminal that has one. */
    private readonly raw?: (on: boolean) => void,
  ) {}

  write(text: string) {
    const bytes = enc.encode(visible(text));
    let done = 0;
    while (done < bytes.length) done += this.output.writeSync(bytes.subarray(done));
  }

  async readLine(prompt: string): Promise<string> {
    // Canonical mode: the terminal edits the line and turns Ctrl-C into SIGINT, which we
    // catch so the shell gets a clean exit 130 and the terminal is left as it was.
    let interrupted = () => {};
    const onInt = () => interrupted();
    const cancelled = new Promise<never>((_, reject) => {
      interrupted = () => reject(new Cancelled());
    });
    cancelled.catch(() => {});
    holdInterrupts();
    Deno.addSignalListener("SIGINT", onInt);
    try {
      this.write(prompt);
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

  async readSecret(prompt: string): Promise<string> {
    if (!this.raw) {
      throw new StshError("This terminal cannot hide what is typed; nothing was read.");
    }
    // Raw mode: no echo, and Ctrl-C arrives as a byte instead of a signal. Backspace and
    // Ctrl-U edit the line, as the terminal's own line editing would have.
    this.raw(true);
    try {
      this.write(prompt);
      const chunks: number[] = [];
      const buf = new Uint8Array(256);
      while (true) {
        const n = await this.input.read(buf);
        if (n === null || n === 0) throw new Cancelled();
        for (const b of buf.subarray(0, n)) {
          if (b === 0x0a || b === 0x0d) return dec.decode(new Uint8Array(chunks));
          if (b === 0x03 || b === 0x04) throw new Cancelled();
          if (b === 0x7f || b === 0x08) chunks.pop();
          else if (b === 0x15) chunks.length = 0;
          else chunks.push(b);
        }
        if (chunks.length > 4096) throw new Cancelled();
      }
    } finally {
      this.raw(false);
      this.write("\n");
    }
  }

  close() {
    this.closer();
  }
}

/**
 * The controlling terminal through `/bin/sh`. Deno opens `/dev/tty` only with --allow-all,
 * which stsh does not ask for; a shell started with --allow-run may open it, and a question
 * on the terminal itself still shows when stdout and stderr are both captured (a hook that
 * collects stderr, an SDK running `stsh credential-process`).
 */
class ShTerminal implements Terminal {
  write(text: string) {
    new Deno.Command("/bin/sh", {
      args: ["-c", 'printf "%s" "$1" > /dev/tty', "sh", visible(text)],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).outputSync();
  }

  async readLine(prompt: string): Promise<string> {
    try {
      return await this.read(
        'printf "%s" "$1" >/dev/tty; IFS= read -r line </dev/tty && printf "%s" "$line"',
        [visible(prompt)],
      );
    } catch (e) {
      // The line the question was on ends here — unless the caller ends it (exitAtOnce).
      if (!exitAtOnce) this.write("\n");
      throw e;
    }
  }

  readSecret(prompt: string): Promise<string> {
    // Echo off on the terminal itself, then the prompt, and back to exactly the settings it
    // had — also when Ctrl-C ends the read (the trap), so the person is never left typing
    // blind.
    const script = "exec 3</dev/tty || exit 1; s=$(stty -g <&3) || exit 1; " +
      'trap \'stty "$s" <&3; printf "\\n" >/dev/tty; exit 130\' INT TERM HUP; ' +
      'stty -echo <&3 || exit 1; printf "%s" "$1" >/dev/tty; IFS= read -r line <&3; rc=$?; ' +
      'stty "$s" <&3; printf "\\n" >/dev/tty; [ "$rc" -eq 0 ] && printf "%s" "$line"';
    return this.read(script, [prompt]);
  }

  /**
   * A line read by `script` through /bin/sh on the terminal. Ctrl-C reaches the whole
   * foreground process group: the shell reading the line dies of it, and this process,
   * listening, turns it into Cancelled (a clean exit 130).
   */
  private async read(script: string, args: string[]): Promise<string> {
    // Listening before the shell that shows the question starts (see Terminal.readLine).
    holdInterrupts();
    let interrupted = false;
    let child: Deno.ChildProcess | undefined;
    const onInt = () => {
      interrupted = true;
      try {
        child?.kill("SIGINT");
      } catch { /* already gone */ }
    };
    Deno.addSignalListener("SIGINT", onInt);
    try {
      child = new Deno.Command("/bin/sh", {
        args: ["-c", script, "sh", ...args],
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).spawn();
      if (interrupted) onInt();
      const out = await child.output();
      if (interrupted || !out.success) throw new Cancelled();
      return dec.decode(out.stdout);
    } finally {
      Deno.removeSignalListener("SIGINT", onInt);
    }
  }

  close() {}
}

let exitAtOnce = false;

/**
 * After Ctrl-C at a question, start nothing more (not even a /bin/sh to end the question's
 * line): `stsh hook pwsh`, because pwsh abandons its prompt function (and shows `PS>`) when
 * a native command it waits for is still busy about 100 ms after Ctrl-C. Its hook ends the
 * line and says "cancelled" itself.
 */
export function exitAtOnceOnCancel(): void {
  exitAtOnce = true;
}

/** The person's terminal, or null when there is none to ask on. */
export function openTerminal(): Terminal | null {
  if (!isWindows) {
    try {
      const probe = new Deno.Command("/bin/sh", {
        args: ["-c", ": < /dev/tty"],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).outputSync();
      if (probe.success) return new ShTerminal();
    } catch { /* no /bin/sh: fall through */ }
  } else {
    try {
      const input = Deno.openSync("CONIN$", { read: true, write: true });
      const output = Deno.openSync("CONOUT$", { read: true, write: true });
      return new TtyTerminal(input, output, () => {
        input.close();
        output.close();
      }, (on) => input.setRaw(on));
    } catch { /* fall through */ }
  }
  if (Deno.stdin.isTerminal() && Deno.stderr.isTerminal()) {
    return new TtyTerminal(Deno.stdin, Deno.stderr, () => {}, (on) => Deno.stdin.setRaw(on));
  }
  return null;
}

/** Colour only on a terminal and never with NO_COLOR. */
export function paint(text: string, code: number, stream: { isTerminal(): boolean }): string {
  if (Deno.env.get("NO_COLOR") || !stream.isTerminal()) return text;
  return `\x1b[${code}m${text}\x1b[0m`;
}

/**
 * A notice for the person: one line on stderr, which the hooks leave on the terminal. Text
 * from the outside world in it (paths, profile names, ARNs, STS messages) cannot move the
 * cursor, set a title or end the line: every control character is shown as an escape.
 */
export function notice(text: string): void {
  Deno.stderr.writeSync(enc.encode(`${paint("stsh:", 2, Deno.stderr)} ${oneLine(text)}\n`));
}
