#!/bin/sh
# Install stsh: `./install.sh [--prefix DIR]` (default ~/.local). Idempotent.
#   1. uses `deno` from PATH, else installs Deno 2 from the npm package `deno`, else with
#      Deno's own installer;
#   2. builds one binary with `deno compile` into PREFIX/bin/stsh;
#   3. where `deno compile` cannot download its runtime, installs a launcher instead that
#      runs the same code through `deno run` with the same, narrow, permissions.
set -eu

prefix="${HOME}/.local"
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

src=$(cd "$(dirname "$0")" && pwd)
bindir="$prefix/bin"
share="$prefix/share/stsh"
mkdir -p "$bindir" "$share"
say() { printf 'install.sh: %s\n' "$*"; }

# 1. Deno
if command -v deno >/dev/null 2>&1; then
  deno=$(command -v deno)
  say "using $($deno --version | head -n 1) at $deno"
elif command -v npm >/dev/null 2>&1 && npm install --silent --prefix "$share/deno" deno@2 >/dev/null 2>&1 \
  && [ -x "$share/deno/node_modules/deno/deno" ]; then
  ln -sf "$share/deno/node_modules/deno/deno" "$bindir/deno"
  deno="$bindir/deno"
  say "installed $($deno --version | head -n 1) from the npm registry as $deno"
else
  say "installing Deno with its own installer (deno.land)"
  curl -fsSL https://deno.land/install.sh | DENO_INSTALL="$share/deno" sh -s -- -y --no-modify-path >/dev/null
  ln -sf "$share/deno/bin/deno" "$bindir/deno"
  deno="$bindir/deno"
  say "installed $($deno --version | head -n 1) as $deno"
fi

# 2. stsh's own files (the launcher runs them; `deno compile` reads them)
rm -rf "$share/app.new"
mkdir -p "$share/app.new"
cp -R "$src/main.ts" "$src/deno.json" "$src/deno.lock" "$src/lib" "$src/shell" "$src/bin" "$share/app.new/"
rm -rf "$share/app"
mv "$share/app.new" "$share/app"
(cd "$share/app" && "$deno" install --quiet --frozen >/dev/null 2>&1 || "$deno" cache --quiet main.ts)

# 3. one binary, or the launcher
perms="--allow-env --allow-read --allow-write --allow-net --allow-run --allow-sys"
rm -f "$bindir/stsh.new"
# shellcheck disable=SC2086
if (cd "$share/app" && "$deno" compile --quiet $perms --include shell/ --output "$bindir/stsh.new" main.ts) >"$share/compile.log" 2>&1; then
  mv -f "$bindir/stsh.new" "$bindir/stsh"
  say "built $bindir/stsh with deno compile"
else
  rm -f "$bindir/stsh.new" "$bindir/stsh"
  ln -s "$share/app/bin/stsh" "$bindir/stsh"
  say "deno compile could not fetch its runtime (see $share/compile.log);"
  say "installed $bindir/stsh as a launcher running 'deno run' with: $perms"
fi

"$bindir/stsh" --version >/dev/null
say "stsh $("$bindir/stsh" --version) is ready."
case ":$PATH:" in
  *":$bindir:"*) ;;
  *) say "add $bindir to PATH, e.g.: export PATH=\"$bindir:\$PATH\"" ;;
esac
say "shell hooks: add one line to your rc file —"
say "  zsh:  eval \"\$(stsh init zsh)\"     bash: eval \"\$(stsh init bash)\""
say "  pwsh: Invoke-Expression (& stsh init pwsh | Out-String)"
