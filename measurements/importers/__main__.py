"""`python -m measurements.importers [--source DIR] [--check]`: rebuild (or check) the shipped CSVs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from measurements.importers import DATA_DIR, DEFAULT_SOURCE_DIR, built_files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m measurements.importers", description=__doc__)
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE_DIR, help="folder of the external CSVs")
    ap.add_argument("--check", action="store_true", help="only say whether the committed files match")
    args = ap.parse_args(argv)
    if not args.source.is_dir():
        print(f"error: source folder {args.source} does not exist (expected shared/external beside the repo)",
              file=sys.stderr)
        return 2
    stale = []
    for name, text in built_files(args.source).items():
        path = DATA_DIR / name
        n = text.count("\n") - 1
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path} ({n} rows)")
    if not args.check:
        from measurements.importers import ecocompute, read_seed003

        for line in ecocompute.build_all(args.source, read_seed003())[1]:
            print(f"left out (seed 003 ships this configuration): {line}")
    if stale:
        print("stale: " + ", ".join(stale) + " (run python -m measurements.importers)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
