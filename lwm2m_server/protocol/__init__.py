"""Sans-IO LwM2M core: paths, object model, codecs, registration parsing, Object 5 tracking."""
