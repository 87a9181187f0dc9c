"""The hash of the extension's sources, recorded in the build and checked by the tests.

``scripts/build_extension.sh`` writes it (``python extension/source_hash.py --write``)
into ``dspex_lab/labextension/build.json`` next to the production build it made;
``tests/test_extension.py`` recomputes it, so a change to the TypeScript, the styles,
``package.json``, ``tsconfig.json`` or ``yarn.lock`` without a rebuild fails the tests
instead of shipping a stale build. Line endings are normalised so a checkout with
CRLF conversion hashes the same. Standard library only: it runs without the venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

EXTENSION = Path(__file__).resolve().parent
BUILD = EXTENSION.parent / "dspex_lab" / "labextension"
BUILD_INFO = BUILD / "build.json"
# what goes into the build (node_modules is pinned by yarn.lock)
SOURCES = ("src", "style", "package.json", "tsconfig.json", "yarn.lock")


def source_files(root: Path = EXTENSION) -> list[Path]:
    """Every file the build reads from, in a stable order."""
    files: list[Path] = []
    for name in SOURCES:
        path = root / name
        if path.is_dir():
            files += [p for p in path.rglob("*") if p.is_file()]
        elif path.is_file():
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def source_hash(root: Path = EXTENSION) -> str:
    """SHA-256 over each source file's relative path and text (LF line endings)."""
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n"))
        digest.update(b"\0")
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true",
                        help="record the hash in dspex_lab/labextension/build.json")
    parser.add_argument("--mode", choices=("production", "development"), default="production",
                        help="the kind of build being recorded (default production)")
    args = parser.parse_args(argv)
    digest = source_hash()
    if not args.write:
        print(digest)
        return 0
    if not (BUILD / "package.json").is_file():
        print(f"no build at {BUILD}: run scripts/build_extension.sh", file=sys.stderr)
        return 1
    info = {"source_sha256": digest, "mode": args.mode, "sources": list(SOURCES)}
    BUILD_INFO.write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {BUILD_INFO.relative_to(EXTENSION.parent)} ({digest[:12]}, {args.mode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
