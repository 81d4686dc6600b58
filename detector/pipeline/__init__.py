"""What `score`, `train` and `nightly` run: featurise a window, score it, build its case file."""
