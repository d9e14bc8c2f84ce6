"""Analysis without training: the lecture's arithmetic, Grad-CAM, images and sweep-report plots."""
