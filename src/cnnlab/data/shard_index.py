"""What LitData trusts blindly in a split's `index.json` (a chunk path outside the folder, a size
that does not match its file, counts that disagree with the labels), checked before a loader
waits minutes on it: one line naming the entry."""

from __future__ import annotations

from pathlib import Path

from cnnlab.core.errors import UserError

META = "cnnlab"  # cnnlab's key in LitData's index.json: labels, classes, digests


def check_index(index: Path, whole: dict, local: Path | None) -> None:
    """One line naming the first bad entry. `local`: the folder, when the chunks are on this
    machine (their sizes are then checked against the files)."""
    chunks, labels = whole.get("chunks"), whole[META].get("labels")
    if not isinstance(chunks, list) or not chunks or not isinstance(labels, list):
        raise UserError(f"{index}: no chunk list or no labels; write the shards again")
    items = 0
    for i, chunk in enumerate(chunks):
        name = chunk.get("filename") if isinstance(chunk, dict) else None
        where = f"{index}: chunks[{i}]"
        if not isinstance(name, str) or not name or name != Path(name).name or name in ("..", "."):
            raise UserError(f"{where} names {name!r}, not a file inside the shard folder")
        size, count = chunk.get("chunk_bytes"), chunk.get("chunk_size")
        if not _whole_number(size) or not _whole_number(count) or count < 1 or size < 1:
            raise UserError(
                f"{where} ({name}) has chunk_bytes={size!r}, chunk_size={count!r}; both must be "
                f"whole numbers ≥ 1"
            )
        if local is not None:
            file = local / name
            if not file.is_file():
                raise UserError(f"{where}: {file} is missing")
            if file.stat().st_size < size:
                raise UserError(
                    f"{where}: {file} holds {file.stat().st_size} bytes, index.json says {size}"
                )
        items += count
    if items != len(labels):
        raise UserError(
            f"{index}: the chunks hold {items} images but {len(labels)} labels are listed; write "
            f"the shards again"
        )


def _whole_number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
