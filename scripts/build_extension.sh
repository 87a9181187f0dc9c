#!/usr/bin/env bash
# Developer path: build the JupyterLab extension (extension/) into dspex_lab/labextension/.
#
# Users never run this: the production build is committed and ships inside the wheel
# (share/jupyter/labextensions/dspex-lab). Run it after changing anything under
# extension/ (src/, style/, package.json, tsconfig.json, yarn.lock), then commit
# dspex_lab/labextension/; tests/test_extension.py fails until the recorded source hash
# matches the sources.
#
#   scripts/build_extension.sh          install node packages, clean production build
#   scripts/build_extension.sh --dev    development build (unminified; never commit it)
#   scripts/build_extension.sh --link   also point this venv's JupyterLab at the build
#                                       (a symlink; without it, re-run pip install -e .)
#
# Needs node >= 20.19 and the venv (.venv, or VENV=path) with JupyterLab 4.6, which
# provides jlpm (yarn 3) and jupyter-builder. node_modules (~200 MB) stays untracked.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
MODE=production
LINK=0
for arg in "$@"; do
    case "$arg" in
        --dev) MODE=development ;;
        --link) LINK=1 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $arg (try --help)" >&2; exit 2 ;;
    esac
done

export PATH="$VENV/bin:$PATH"
for tool in node jlpm jupyter-builder; do
    if ! command -v "$tool" >/dev/null; then
        echo "$tool not found: node >= 20.19 must be installed, and $VENV must hold" \
             "JupyterLab >= 4.6 (pip install -e '.[test]')" >&2
        exit 1
    fi
done
node -e 'const [a,b]=process.versions.node.split(".").map(Number);
         if (a<20 || (a===20 && b<19)) { console.error(`node ${process.version} is too old: the builder needs >= 20.19`); process.exit(1); }'

start=$(date +%s)
cd extension
if [ -n "${CI:-}" ]; then jlpm install --immutable; else jlpm install; fi
jlpm clean
jlpm build:lib
if [ "$MODE" = development ]; then
    jupyter-builder build --development True .
else
    jupyter-builder build .
fi
cd "$ROOT"
"$VENV/bin/python" extension/source_hash.py --write --mode "$MODE"

if [ "$LINK" = 1 ]; then
    # what pip installs, with links in place of copies: later builds show on reload
    target="$VENV/share/jupyter/labextensions/dspex-lab"
    rm -rf "$target"
    mkdir -p "$target"
    for name in package.json build.json static; do
        ln -s "$ROOT/dspex_lab/labextension/$name" "$target/$name"
    done
    cp extension/install.json "$target/install.json"
    echo "linked $target to dspex_lab/labextension"
fi

echo "built dspex_lab/labextension ($MODE) in $(( $(date +%s) - start )) s:" \
     "$(du -sk dspex_lab/labextension | cut -f1) KB"
