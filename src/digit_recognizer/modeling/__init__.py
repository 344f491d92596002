"""Models, presets, training, inference and ensembles."""
