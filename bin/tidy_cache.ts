/**
 * install.sh runs this last, on the install's module cache (DENO_DIR), from a Deno whose own
 * cache is elsewhere: Deno keeps its caches in SQLite databases in WAL mode, and filling the
 * cache leaves megabytes of write-ahead log beside them, which every later start of stsh
 * reads through (measured: about 3 ms of CPU per start). Opening and closing each database
 * here, as its last user, folds the log into it and removes it.
 */
import { DatabaseSync } from "node:sqlite";

const dir = Deno.args[0];
if (!dir) {
  console.error("usage: tidy_cache.ts DENO_DIR");
  Deno.exit(2);
}
for (const e of Deno.readDirSync(dir)) {
  if (!e.isFile || !/_cache_v\d+$/.test(e.name)) continue;
  const db = new DatabaseSync(`${dir}/${e.name}`);
  try {
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } finally {
    db.close();
  }
}
