"""Records a finished lecture sweep's jobs as the verdicts read them, for the should-not-hold
tests: `python -m tests.record_lecture OUT/<claim> NAME` writes tests/data/lecture/NAME.json
(each job's overrides, the metrics the verdicts use and its learning curves)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cnnlab.lecture import results

KEPT = ("test/acc", "train/acc", "train/loss", "val/acc_best", "params", "train_images",
        "num_classes", "train/nonfinite_skipped")  # fmt: skip


def record(sweep_dir: Path) -> list[dict]:
    return [{"set": job.set, "metrics": {k: job.get(k) for k in KEPT if job.get(k) is not None},
             "curves": job.curves} for job in results.jobs(sweep_dir) if job.ok]  # fmt: skip


if __name__ == "__main__":
    out = Path(__file__).parent / "data" / "lecture" / f"{sys.argv[2]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record(Path(sys.argv[1])), indent=1) + "\n")
    print(f"wrote {out}")
