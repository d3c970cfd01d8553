"""The composition root: what one start of the server leaves behind."""

from __future__ import annotations

import stat
from pathlib import Path

from compilers import keys
from lwm2m_server.application import Application
from tests.integration.rollouts.conftest import app_settings


async def test_first_start_creates_the_signing_key_and_a_restart_keeps_it(tmp_path: Path) -> None:
    app = Application(app_settings(tmp_path), http=False)
    await app.start()
    try:
        key_file = tmp_path / keys.KEY_FILE
        assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert len(app.public_key) == 32
        assert app.services.rollouts is app.rollouts and app.services.ota is app.ota
        first = app.public_key
    finally:
        await app.stop()
    again = Application(app_settings(tmp_path), http=False)
    await again.start()
    try:
        assert again.public_key == first
        assert again.coap_port > 0 and again.http_port == 0
    finally:
        await again.stop()
