"""A photo-like JPEG image folder from scikit-learn's two bundled photographs, offline:
`make corpus ARGS="--out outputs/corpus"` or `cnnlab-corpus` (cnnlab.data.photo_corpus makes it)."""

from __future__ import annotations

import argparse

from cnnlab.data.photo_corpus import CLASSES, write


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="outputs/corpus", help="folder to write (ImageFolder)")
    parser.add_argument("--train", type=int, default=2000, help="training images")
    parser.add_argument("--val", type=int, default=200, help="validation images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.train < 1 or args.val < 0:
        parser.exit(1, f"error: --train {args.train} --val {args.val}: give ≥ 1 and ≥ 0 images\n")
    try:
        root = write(args.out, {"train": args.train, "val": args.val}, args.seed)
    except OSError as err:  # read-only, full or not a folder
        parser.exit(1, f"error: cannot write {err.filename or args.out}: {err.strerror}\n")
    print(f"wrote {args.train} + {args.val} JPEGs in {len(CLASSES)} classes to {root}")


if __name__ == "__main__":
    main()
