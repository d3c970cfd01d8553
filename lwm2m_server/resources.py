"""Where the bundled data lives: the LwM2M object definitions (``objects/``) and the default configs
(``config/``: server defaults, demo and small fleets).

Both directories stay at the repository's top level; ``lwm2m_server/_data/objects`` and
``lwm2m_server/_data/config`` are symlinks to them, which setuptools follows when it builds the wheel
(package data in pyproject.toml). So the same paths work in a source checkout, an editable install and
an installed wheel, from any working directory. A leaf module: standard library only.
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "_data"
OBJECTS_DIR = DATA_DIR / "objects"
CONFIG_DIR = DATA_DIR / "config"
DEFAULT_CONFIG = CONFIG_DIR / "tinymlaas.toml"
DEFAULT_FLEET = CONFIG_DIR / "fleet-demo.toml"
