/**
 * install.sh runs this with `--cached-only` against the install's own module cache: it loads
 * every module stsh can ever load — each lib/ module, each package of deno.json's imports, and
 * each npm package the lock file holds (the SDK loads some of them only when a profile needs
 * them: SSO, credential_process, web identity) — so a missing one fails the install instead
 * of a person's prompt later. Loading them also stores their compiled code in that cache.
 * It prints nothing when everything is there; else one line per module that is not, and exits 1.
 */
const app = new URL("../", import.meta.url);
const read = async (name: string) => JSON.parse(await Deno.readTextFile(new URL(name, app)));

const specifiers: string[] = [];
const lib = [...Deno.readDirSync(new URL("lib/", app))].map((e) => e.name).sort();
for (const name of lib) if (name.endsWith(".ts")) specifiers.push(new URL(`lib/${name}`, app).href);
specifiers.push(...Object.keys((await read("deno.json")).imports ?? {}));

const problems: string[] = [];
for (const specifier of specifiers) {
  try {
    await import(specifier);
  } catch (e) {
    problems.push(`${specifier}: ${String((e as Error)?.message ?? e).split("\n")[0]}`);
  }
}

// The packages those load only on demand cannot be imported by name from here (only the
// packages deno.json names resolve without a registry): check that Deno unpacked each one.
// Deno keeps them in DENO_DIR/npm/<registry host>/NAME/VERSION/.
const packages = Object.keys((await read("deno.lock")).npm ?? {}).map((key) => {
  const at = key.indexOf("@", 1); // "@aws-sdk/core@3.981.2", "name@1.2.3_peer@4.5.6"
  return `${key.slice(0, at)}/${key.slice(at + 1).split("_")[0]}/package.json`;
});
const npm = `${Deno.env.get("DENO_DIR")}/npm`;
const exists = (path: string) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
};
const hosts = [...Deno.readDirSync(npm)].filter((e) => e.isDirectory).map((e) => e.name);
const missing = hosts.map((host) => packages.filter((p) => !exists(`${npm}/${host}/${p}`)))
  .sort((a, b) => a.length - b.length)[0] ?? packages;
for (const p of missing) problems.push(`${p.replace(/\/package\.json$/, "")}: not in ${npm}`);

for (const p of problems) console.error(p);
Deno.exit(problems.length ? 1 : 0);
