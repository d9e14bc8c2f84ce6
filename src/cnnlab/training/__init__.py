"""Training: the one place configs become objects (build), the LightningModule, freeze strategies,
optimizer groups, schedules, checkpoints and loggers."""
