/**
 * `stsh doctor`: everything a newcomer (or a bug report) needs in one screen — versions, the
 * AWS files and every profile's plan or problem, the state directory's permissions, the
 * keyring, and whether this shell's hook is loaded and placed after prompt themes — each
 * with what to do about it. It only reads: no STS call, no keyring call, no prompt.
 */
import meta from "../deno.json" with { type: "json" };
import { describe, loadConfig, profileProblems } from "./config.ts";
import { StshError } from "./errors.ts";
import { checkRegular, Unreadable } from "./fsafe.ts";
import { keysWhere } from "./keys.ts";
import { cacheDir, configFile, credentialsFile, isWindows, stateDir } from "./paths.ts";
import { chooseBackend, keyringChoice, whyNoKeyring } from "./secrets.ts";
import { visible } from "./text.ts";

export type Level = "ok" | "info" | "warn" | "FAIL";

export interface Finding {
  level: Level;
  text: string;
  /** What to do about it. */
  fix?: string;
}

/** Every check, in the order a person reads them. */
export async function diagnose(env: Record<string, string>): Promise<Finding[]> {
  const out: Finding[] = [];
  const add = (level: Level, text: string, fix?: string) => out.push({ level, text, fix });

  add(
    "ok",
    `stsh ${meta.version} on Deno ${Deno.version.deno} (${
      Deno.build.standalone ? `compiled: ${Deno.execPath()}` : `deno run: ${Deno.mainModule}`
    })`,
  );

  // The AWS files, then every profile.
  let profiles = 0;
  for (const [what, path] of [["config", configFile(env)], ["credentials", credentialsFile(env)]]) {
    try {
      const { info } = await checkRegular(path, { maxBytes: 16 * 2 ** 20 });
      const mode = isWindows ? null : info.mode;
      if (what === "credentials" && mode !== null && (mode & 0o077) !== 0) {
        add(
          "warn",
          `AWS credentials file ${path} can be read by other users (mode ${
            (mode & 0o777).toString(8).padStart(4, "0")
          }); it holds secrets`,
          `chmod 600 ${path} — or move its keys into the keyring: \`stsh keys import PROFILE\`.`,
        );
      } else add("ok", `AWS ${what} file: ${path}`);
    } catch (e) {
      if (e instanceof Unreadable && e.why === "does not exist") {
        add(what === "config" ? "warn" : "info", `no AWS ${what} file at ${path}`);
      } else add("FAIL", `AWS ${what} file: ${(e as Error).message}`);
    }
  }
  try {
    const config = await loadConfig(env);
    const names = [...config.profiles.keys()].sort();
    profiles = names.length;
    const problems = new Map(profileProblems(config, env).map((p) => [p.profile, p.message]));
    for (const name of names) {
      const problem = problems.get(name);
      if (problem) {
        add("FAIL", `profile '${name}': ${problem}`);
        continue;
      }
      const d = describe(config, name, env);
      const parts = [d.kind];
      if (d.role) parts.push(d.role);
      if (d.mfa) parts.push(`MFA ${d.mfa}`);
      const keys = keysWhere(config, name, env);
      if (keys !== "-") parts.push(`keys: ${keys}`);
      add("ok", `profile '${name}': ${parts.join(", ")}`);
    }
    if (!profiles) add("warn", "no profiles", 'README, "Five minutes with stsh", shows a config.');
  } catch (e) {
    add(
      "FAIL",
      `the AWS config cannot be used: ${(e as Error).message}`,
      e instanceof StshError ? e.hint : undefined,
    );
  }

  // State: private, and ours.
  for (const dir of [stateDir(env), cacheDir(env)]) {
    let st: Deno.FileInfo;
    try {
      st = await Deno.lstat(dir);
    } catch {
      add("info", `${dir} does not exist yet (made at the first use)`);
      continue;
    }
    if (st.isSymlink) st = await Deno.stat(dir).catch(() => st);
    if (!st.isDirectory) {
      add("FAIL", `${dir} is not a directory`, `Move it away; stsh keeps its state there.`);
    } else if (!isWindows && st.uid !== null && st.uid !== Deno.uid()) {
      add("FAIL", `${dir} belongs to another user`, `Set STSH_HOME to a directory of yours.`);
    } else if (!isWindows && st.mode !== null && (st.mode & 0o077) !== 0) {
      add(
        "FAIL",
        `${dir} can be entered by others (mode ${(st.mode & 0o777).toString(8)})`,
        `chmod 700 ${dir}`,
      );
    } else add("ok", `${dir}: private${isWindows ? "" : " (0700)"} and yours`);
  }

  // The keyring: what would be used, without asking it anything.
  const { name: backend } = chooseBackend(env);
  if (backend) {
    add("ok", `keyring: ${backend} (STSH_KEYRING=${keyringChoice(env)})`);
  } else {
    add(
      "info",
      `keyring: none — ${whyNoKeyring(env)}`,
      "Keys and MFA sessions stay in files; STSH_KEYRING=file keeps them encrypted.",
    );
  }

  // This shell's hook, as the `stsh` shell function reported it (PROTOCOL.md).
  const hook = parseHookState(env.STSH_HOOK_STATE);
  if (!hook) {
    add(
      "info",
      "no shell hook reported: stsh was not run through the `stsh` shell function, or this shell has no hook",
      'Add the init line to your rc file: eval "$(stsh init bash)" (zsh, fish, pwsh: README, "Shell setup").',
    );
  } else {
    const what = `hook: ${hook.shell ?? "?"} ${hook.version ?? ""}`.trimEnd() +
      `, ${hook.mode === "serve" ? "endpoint (--serve)" : "keys"} mode`;
    if (hook.hook === "missing") {
      add(
        "FAIL",
        `${what}, but something replaced it after it was loaded: it no longer runs`,
        "Put the stsh init line after your prompt theme (starship, oh-my-posh, p10k) in the rc file.",
      );
    } else if (hook.hook === "late") {
      add(
        "warn",
        `${what}, running after another prompt hook (a theme may show stale credentials)`,
        "Put the stsh init line after your prompt theme in the rc file.",
      );
    } else add("ok", `${what}, first among prompt hooks`);
  }
  if (env.STSH_PROFILE) {
    add("info", `active in this shell: ${env.STSH_PROFILE} (see \`stsh current\`)`);
  }
  return out;
}

function parseHookState(text?: string): Record<string, string> | null {
  if (!text) return null;
  const o: Record<string, string> = {};
  for (const word of text.split(/\s+/)) {
    const i = word.indexOf("=");
    if (i > 0) o[word.slice(0, i)] = word.slice(i + 1);
  }
  return o;
}

/** The findings as text (control characters made visible), and whether all is well. */
export function report(findings: Finding[]): { text: string; healthy: boolean } {
  const lines = findings.map((f) =>
    `${f.level.padEnd(4)}  ${visible(f.text)}${f.fix ? `\n      → ${visible(f.fix)}` : ""}`
  );
  const problems = findings.filter((f) => f.level === "FAIL").length;
  lines.push(problems ? `\n${problems} problem${problems > 1 ? "s" : ""} found.` : "\nAll good.");
  return { text: lines.join("\n") + "\n", healthy: problems === 0 };
}
