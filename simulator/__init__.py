"""Simulated LwM2M client devices and fleets, with the real TFLite Micro runtime."""
