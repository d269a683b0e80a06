/**
 * A real gnome-keyring in a private D-Bus session, for tests: a dbus-daemon of our own on a
 * socket in a temp directory, and gnome-keyring-daemon (secrets component) unlocked with the
 * password "test", keeping its files under the given HOME (~/.local/share/keyrings) so a
 * test can grep them. Both are children of the test process and are killed by close().
 *
 * ```ts
 * const kr = await startKeyring(sb.home);
 * try { await w.run(["keys", "import", "me"], { env: kr.env }); } finally { await kr.close(); }
 * ```
 */

export interface Keyring {
  /** DBUS_SESSION_BUS_ADDRESS (and XDG_RUNTIME_DIR) for the programs under test. */
  env: Record<string, string>;
  /** Lock the login collection, as a screen lock or `seahorse` would. */
  lock(): Promise<void>;
  close(): Promise<void>;
}

/** Run a short command with a deadline; its stdout. */
async function run(cmd: string[], env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(10_000),
  }).output();
  if (!out.success) {
    throw new Error(`${cmd.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/**
 * A bus and a keyring. `provider: false` gives a bus on which nothing provides the Secret
 * Service (and nothing can be activated): "no Secret Service on the bus".
 */
export async function startKeyring(
  home: string,
  opts: { provider?: boolean } = {},
): Promise<Keyring> {
  const runtime = await Deno.makeTempDir({ prefix: "stsh-bus-" });
  await Deno.chmod(runtime, 0o700);
  const socket = `${runtime}/bus`;
  const base: Record<string, string> = {
    HOME: home,
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    XDG_RUNTIME_DIR: runtime,
    LANG: "C.UTF-8",
  };
  const args = ["--nofork", "--nopidfile", `--address=unix:path=${socket}`, "--print-address=1"];
  if (opts.provider === false) {
    // No service directories: nothing is activated on demand.
    const conf = `${runtime}/bus.conf`;
    await Deno.writeTextFile(
      conf,
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=${socket}</listen>
<policy context="default"><allow send_destination="*" eavesdrop="true"/>
<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>`,
    );
    args.splice(2, 1, `--config-file=${conf}`);
  } else {
    args.unshift("--session");
  }
  const bus = new Deno.Command("dbus-daemon", {
    args,
    env: base,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  // The first line it prints is the address: the bus is listening.
  const reader = bus.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let printed = "";
  const deadline = setTimeout(() => bus.kill("SIGKILL"), 10_000);
  while (!printed.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("dbus-daemon did not start");
    printed += value;
  }
  clearTimeout(deadline);
  reader.releaseLock();
  bus.stdout.cancel().catch(() => {});
  const env = { ...base, DBUS_SESSION_BUS_ADDRESS: printed.trim() };

  let daemon: Deno.ChildProcess | undefined;
  if (opts.provider !== false) {
    daemon = new Deno.Command("gnome-keyring-daemon", {
      args: ["--foreground", "--unlock", "--components=secrets"],
      env,
      clearEnv: true,
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const w = daemon.stdin.getWriter();
    await w.write(new TextEncoder().encode("test"));
    await w.close();
    // Wait until it owns the name (asking the bus does not activate anything).
    for (let i = 0;; i++) {
      const owned = await run([
        "dbus-send",
        "--session",
        "--print-reply",
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.NameHasOwner",
        "string:org.freedesktop.secrets",
      ], env).catch(() => "");
      if (/boolean true/.test(owned)) break;
      if (i > 100) throw new Error("gnome-keyring-daemon did not register on the bus");
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  return {
    env: { DBUS_SESSION_BUS_ADDRESS: env.DBUS_SESSION_BUS_ADDRESS, XDG_RUNTIME_DIR: runtime },
    async lock() {
      await run([
        "dbus-send",
        "--session",
        "--print-reply",
        "--dest=org.freedesktop.secrets",
        "/org/freedesktop/secrets",
        "org.freedesktop.Secret.Service.Lock",
        "array:objpath:/org/freedesktop/secrets/collection/login",
      ], env);
    },
    async close() {
      for (const p of [daemon, bus]) {
        if (!p) continue;
        try {
          p.kill("SIGTERM");
        } catch { /* gone */ }
        await p.status;
      }
      await Deno.remove(runtime, { recursive: true }).catch(() => {});
    },
  };
}
