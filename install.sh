#!/bin/sh
# Install stsh: `./install.sh [--prefix DIR]`. Running it again updates everything in place.
# PREFIX is /usr/local as root, else ~/.local: stsh goes to PREFIX/bin (and Deno too, when it
# was missing), everything else to PREFIX/share/stsh.
#   1. Deno: `deno` from PATH, else Deno 2 from the npm package `deno` (STSH_DENO_VERSION=2.9.6
#      for that version), else Deno's installer;
#   2. stsh's code, and every module it can load in a module cache of its own (checked);
#   3. one binary with `deno compile`; where that cannot download its runtime, a launcher
#      that runs the same code with that Deno and that cache, needing no registry.
set -eu

if [ "$(id -u)" = 0 ]; then prefix=/usr/local; else prefix="${HOME:?}/.local"; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
# POSIX single quotes, for the paths written into the launcher.
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
on_path() { case ":$PATH:" in *":$1:"*) return 0 ;; esac; return 1; }

src=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
bindir="$prefix/bin"
share="$prefix/share/stsh"
cache="$share/cache"
mkdir -p "$bindir" "$share"

# 1. Deno. One that install.sh put into $share/deno earlier counts as found.
deno=
if command -v deno >/dev/null 2>&1; then
  deno=$(command -v deno)
  case $deno in /*) ;; *) deno="$(pwd)/$deno" ;; esac
  real=$(readlink -f "$deno" 2>/dev/null || echo "$deno")
  case $real in "$share/deno/"*) deno=$real ;; esac
  "$deno" --version >/dev/null 2>&1 || die "$deno --version fails; fix or remove that deno first."
  say "using $("$deno" --version | head -n 1) at $deno"
fi
if [ -z "$deno" ] && command -v npm >/dev/null 2>&1; then
  version=${STSH_DENO_VERSION:-2}
  say "installing Deno $version from the npm package 'deno' into $share/deno"
  rm -rf "$share/deno"
  if npm install --no-audit --no-fund --prefix "$share/deno" "deno@$version" >"$share/npm.log" 2>&1; then
    for candidate in "$share/deno/node_modules/deno/deno" "$share"/deno/node_modules/@deno/*/deno; do
      if [ -x "$candidate" ] && "$candidate" --version >/dev/null 2>&1; then
        deno=$candidate
        break
      fi
    done
  fi
  [ -n "$deno" ] || say "npm could not install Deno (see $share/npm.log)"
fi
if [ -z "$deno" ]; then
  command -v curl >/dev/null 2>&1 || die "no deno, npm or curl: install Deno 2 first (https://deno.com)."
  say "installing Deno with its own installer (deno.land) into $share/deno"
  curl -fsSL https://deno.land/install.sh | DENO_INSTALL="$share/deno" sh -s -- -y --no-modify-path >/dev/null
  deno="$share/deno/bin/deno"
fi
case $deno in
  "$share/deno/"*)
    # Our own Deno, beside stsh, so that `deno task test` finds it on the same PATH. Never
    # over a deno that is not one of our links.
    if [ -e "$bindir/deno" ] && [ ! -L "$bindir/deno" ]; then
      say "left $bindir/deno alone (not installed by install.sh); stsh uses $deno"
    else
      ln -sfn "$deno" "$bindir/deno"
      say "installed $("$deno" --version | head -n 1) as $bindir/deno"
    fi
    ;;
esac

# 2. stsh's code and its module cache (DENO_DIR). The registry is recorded: Deno keeps npm
# packages under the registry's host name, so the launcher must name the same one.
registry=${NPM_CONFIG_REGISTRY:-}
if [ -z "$registry" ] && command -v npm >/dev/null 2>&1; then
  registry=$(npm config get registry 2>/dev/null || true)
fi
case $registry in http://* | https://*) ;; *) registry=https://registry.npmjs.org/ ;; esac

rm -rf "$share/app.new"
mkdir -p "$share/app.new" "$cache"
cp -R "$src/main.ts" "$src/deno.json" "$src/deno.lock" "$src/lib" "$src/shell" "$src/bin" \
  "$share/app.new/"
withcache() { DENO_DIR="$cache" NPM_CONFIG_REGISTRY="$registry" DENO_NO_UPDATE_CHECK=1 "$@"; }
perms="--allow-env --allow-read --allow-write --allow-net --allow-run --allow-sys"
say "fetching stsh's modules into $cache (from $registry)"
# shellcheck disable=SC2086
if ! (cd "$share/app.new" && withcache "$deno" install --quiet --frozen --entrypoint main.ts lib/*.ts) \
  >"$share/modules.log" 2>&1 ||
  ! (cd "$share/app.new" && withcache "$deno" run --quiet --no-prompt --cached-only --frozen $perms \
    bin/preload.ts) >>"$share/modules.log" 2>&1; then
  rm -rf "$share/app.new"
  tail -n 5 "$share/modules.log" >&2
  die "could not put stsh's modules in its cache (see $share/modules.log); the installed stsh, if any, is unchanged."
fi
rm -rf "$share/app.old"
if [ -d "$share/app" ]; then mv "$share/app" "$share/app.old"; fi
mv "$share/app.new" "$share/app"
rm -rf "$share/app.old"
# Compile every module once more at its final path: a person without write access to the
# cache (another user of a /usr/local install) then starts from compiled code too.
# shellcheck disable=SC2086
(cd "$share/app" && withcache "$deno" run --quiet --no-prompt --cached-only --frozen $perms \
  bin/preload.ts) >>"$share/modules.log" 2>&1 || true
"$deno" --version | head -n 1 >"$cache/stsh-ready"

# 3. One binary, or the launcher.
rm -f "$bindir/stsh.new"
# shellcheck disable=SC2086
if (cd "$share/app" && withcache "$deno" compile --quiet --frozen $perms --include shell/ \
  --output "$bindir/stsh.new" main.ts) >"$share/compile.log" 2>&1; then
  mv -f "$bindir/stsh.new" "$bindir/stsh"
  say "built $bindir/stsh with deno compile"
else
  rm -f "$bindir/stsh.new"
  {
    sed '/^deno=$/,$d' "$share/app/bin/stsh"
    printf 'deno=%s\n' "$(q "$deno")"
    printf 'app=%s\n' "$(q "$share/app")"
    printf 'cache=%s\n' "$(q "$cache")"
    printf 'registry=%s\n' "$(q "$registry")"
    printf 'self=%s\n' "$(q "$bindir/stsh")"
    sed '1,/^self=$/d' "$share/app/bin/stsh"
  } >"$bindir/stsh.new"
  chmod 755 "$bindir/stsh.new"
  mv -f "$bindir/stsh.new" "$bindir/stsh"
  say "deno compile could not fetch its runtime (see $share/compile.log);"
  say "installed $bindir/stsh as a launcher running $deno with: $perms"
fi

version=$("$bindir/stsh" --version) || die "$bindir/stsh --version failed."
# Last, when nothing else writes to the cache: fold Deno's SQLite logs into their databases.
rm -rf "$share/tidy.deno"
DENO_DIR="$share/tidy.deno" "$deno" run --quiet --no-config --allow-read="$cache" \
  --allow-write="$cache" "$share/app/bin/tidy_cache.ts" "$cache" >>"$share/modules.log" 2>&1 || true
rm -rf "$share/tidy.deno"
say "stsh $version is ready."
if ! on_path "$bindir"; then
  say "$bindir is not on your PATH. Run this now, and add it to your shell's rc file"
  say "(~/.bashrc, ~/.zshrc; pwsh: \$env:PATH = \"$bindir:\$env:PATH\" in \$PROFILE):"
  say "  export PATH=\"$bindir:\$PATH\""
fi
say "shell hooks: add one line to your rc file —"
say "  zsh:  eval \"\$(stsh init zsh)\"     bash: eval \"\$(stsh init bash)\""
say "  pwsh: Invoke-Expression (& stsh init pwsh | Out-String)"
say "  fish: stsh init fish | source   (in ~/.config/fish/config.fish)"
