"""Compile ML models for classes of constrained devices; knows nothing of LwM2M."""
