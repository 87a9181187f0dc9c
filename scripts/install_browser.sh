#!/usr/bin/env bash
# Install the system Chromium that the browser tests drive (through Python Playwright,
# with executable_path="/usr/bin/chromium"). Never `playwright install`: it downloads a
# browser build, which this project does not use and which fails without network.
#
# Idempotent: a fast no-op when /usr/bin/chromium is already there. Installing needs
# root (CI runs as root) and Debian/Ubuntu's apt-get.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install_browser.sh: $CHROMIUM is missing and apt-get is not available;" \
             "install Chromium with your package manager" >&2
        exit 1
    fi
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO="sudo"
        else
            echo "install_browser.sh: installing chromium needs root (or sudo)" >&2
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "install_browser.sh: installing Debian's chromium with apt-get" >&2
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends chromium fonts-liberation
    if [ ! -x "$CHROMIUM" ]; then
        echo "install_browser.sh: apt-get finished but $CHROMIUM is still missing" >&2
        exit 1
    fi
fi

# Debian's /usr/bin/chromium is a shell wrapper; ask the binary for its version quietly.
"$CHROMIUM" --version 2>/dev/null
