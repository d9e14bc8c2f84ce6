"""Using a trained checkpoint: images from disk, test-time augmentation, export."""
