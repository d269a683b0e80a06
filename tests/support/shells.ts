/** Where the shells the tests drive are (pwsh is a dotnet global tool in ~/.dotnet/tools). */

export type ShellName = "bash" | "zsh" | "pwsh" | "fish";

export function findExe(name: string, extra: string[] = []): string | undefined {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), ...extra]) {
    if (!dir) continue;
    try {
      const p = `${dir}/${name}`;
      const st = Deno.statSync(p);
      if (st.isFile && (st.mode ?? 0o111) & 0o111) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Each shell's executable, or undefined when it is not installed. */
export const EXE: Record<ShellName, string | undefined> = {
  bash: findExe("bash"),
  zsh: findExe("zsh"),
  pwsh: findExe("pwsh", [`${Deno.env.get("HOME") ?? "/root"}/.dotnet/tools`]),
  fish: findExe("fish"),
};
