"""Data layer (torch-free): CAMUS readers for both public layouts, splits, experiments,
preprocessing and the synthetic phantom dataset."""
