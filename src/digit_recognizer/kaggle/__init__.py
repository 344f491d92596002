"""Kaggle: the official client, submissions and kernels."""
