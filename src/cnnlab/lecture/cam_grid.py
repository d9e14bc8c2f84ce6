"""The gradcam section's picture: the Grad-CAM grids the shortcut study's jobs logged to
TensorBoard (original | CAM of the predicted class | CAM of the true class), the shortcut
network's beside the honest one's, one seed each, the first ROWS digits."""

from __future__ import annotations

import io

from cnnlab.lecture.results import Job, by, events, setting

ROWS = 4  # digits shown per network
TAG = "gradcam/gradcam"  # GradCamGrid's image (method gradcam)


def _logged_grid(job: Job):
    """The last Grad-CAM grid in the job's TensorBoard events, as an RGB array, or None."""
    import numpy as np
    from PIL import Image

    last = None
    for acc in events(job, "images"):
        if TAG in acc.Tags().get("images", []):
            last = acc.Images(TAG)[-1]
    if last is None:
        return None
    return np.asarray(Image.open(io.BytesIO(last.encoded_image_string)).convert("RGB"))


def png(jobs: list[Job]) -> bytes | None:
    """Both networks' grids side by side, cut to ROWS digits; None when either is missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = by(jobs, "data.source.correlation")
    picked = {}
    for (corr,), members in groups.items():
        label = "shortcut (mark = label)" if float(corr) > 0.5 else "no shortcut (mark random)"
        job = sorted(members, key=lambda j: str(j.set.get("seed")))[0]
        grid, drawn = _logged_grid(job), _digits_drawn(job)
        if grid is not None and drawn:
            picked[f"{label}, seed {job.set.get('seed')}"] = grid[: grid.shape[0] * ROWS // drawn]
    if len(picked) < 2:
        return None
    fig, axes = plt.subplots(1, len(picked), figsize=(7, 4.2), layout="constrained")
    for ax, (label, grid) in zip(axes, sorted(picked.items(), reverse=True), strict=True):
        ax.imshow(grid)
        ax.set_title(label, fontsize=10)
        ax.axis("off")
    fig.suptitle("Grad-CAM: original | CAM of the predicted class | of the true class", fontsize=10)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=110)
    plt.close(fig)
    return out.getvalue()


def _digits_drawn(job: Job) -> int:
    """Rows in the job's GradCamGrid picture: one per validation image it drew (its config)."""
    return int(setting(job, "callbacks.gradcam.num_images") or 0)
