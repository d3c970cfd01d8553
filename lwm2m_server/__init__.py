"""TinyMLaaS LwM2M device-management server."""

__version__ = "0.1.0"
