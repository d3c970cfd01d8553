from pathlib import Path

import pytest

from lwm2m_server.config import ConfigError, load_settings


def test_defaults_come_from_repo_toml() -> None:
    s = load_settings(environ={})
    assert s.server.coap_port == 5683
    assert s.ota.prefer == "pull"
    assert s.store_path == s.server.data_dir / "tinymlaas.sqlite3"


def test_env_then_overrides_take_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[server]\ncoap_port = 6000\nhttp_port = 9000\n")
    s = load_settings(
        cfg,
        environ={"TINYMLAAS_SERVER__COAP_PORT": "6001", "TINYMLAAS_LOGGING__LEVEL": "debug"},
        overrides={"server": {"coap_port": 6002, "http_port": None}},
    )
    assert s.server.coap_port == 6002
    assert s.server.http_port == 9000
    assert s.logging.level == "debug"


@pytest.mark.parametrize(
    ("text", "needle"),
    [("[server]\ncoap_port = 'x'\n", "server.coap_port"), ("[server\n", "c.toml"), ("[bogus]\na=1\n", "bogus")],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_settings(cfg, environ={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_env_values_are_typed_like_toml() -> None:
    s = load_settings(
        environ={
            "TINYMLAAS_OTA__BLOCK_SIZE": "256",
            "TINYMLAAS_MQTT__ENABLED": "true",
            "TINYMLAAS_SERVER__COAP_HOST": "127.0.0.1",
            "TINYMLAAS_SERVER__DATA_DIR": "/tmp/x y",
        }
    )
    assert s.ota.block_size == 256 and s.mqtt.enabled is True
    assert s.server.coap_host == "127.0.0.1" and str(s.server.data_dir) == "/tmp/x y"


def test_size_keys_take_size_strings_and_bad_ones_are_named() -> None:
    s = load_settings(environ={"TINYMLAAS_COMPILE__FLASH_MARGIN_BYTES": "8KiB",
                               "TINYMLAAS_COMPILE__RUNTIME_OVERHEAD_BYTES": "3k"})
    assert (s.compile.flash_margin_bytes, s.compile.runtime_overhead_bytes) == (8192, 3072)
    with pytest.raises(ConfigError, match=r"compile\.flash_margin_bytes.*unknown unit 'parsecs'"):
        load_settings(environ={"TINYMLAAS_COMPILE__FLASH_MARGIN_BYTES": "4 parsecs"})


def test_compile_cache_is_one_per_user_by_default(tmp_path: Path) -> None:
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path)
    try:
        s = load_settings(environ={}, overrides={"server": {"data_dir": tmp_path / "data"}})
        assert s.compile_cache_dir == tmp_path / "tinymlaas" / "compile-cache"  # not under the data dir
    finally:
        if old is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = old


def test_security_settings_defaults_and_env() -> None:
    s = load_settings(environ={"TINYMLAAS_MQTT__PASSWORD": "hunter2", "TINYMLAAS_MQTT__USERNAME": "bridge"})
    assert s.mqtt.allow_commands is False and s.api.metrics_open is False and s.api.query_token is True
    assert s.mqtt.username == "bridge" and s.mqtt.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.mqtt)
    with pytest.raises(ConfigError, match=r"api\.refusal_window_s"):
        load_settings(environ={"TINYMLAAS_API__REFUSAL_WINDOW_S": "0"})


def test_rollout_lease_ttl_default_env_and_bad_value() -> None:
    assert load_settings(environ={}).cluster.lease_ttl_s == 10.0
    assert load_settings(environ={"TINYMLAAS_CLUSTER__LEASE_TTL_S": "2.5"}).cluster.lease_ttl_s == 2.5
    with pytest.raises(ConfigError, match=r"cluster\.lease_ttl_s"):
        load_settings(environ={"TINYMLAAS_CLUSTER__LEASE_TTL_S": "0"})


def test_secrets_dir_defaults_to_the_data_dir_and_is_overridable(tmp_path: Path) -> None:
    s = load_settings(environ={}, overrides={"server": {"data_dir": tmp_path / "data"}})
    assert s.secrets_dir == tmp_path / "data"  # the signing key and credentials.key beside the store, as before
    env = load_settings(environ={"TINYMLAAS_SERVER__SECRETS_DIR": str(tmp_path / "shared")})
    assert env.secrets_dir == tmp_path / "shared"
    flag = load_settings(environ={"TINYMLAAS_SERVER__SECRETS_DIR": "/elsewhere"},
                         overrides={"server": {"secrets_dir": str(tmp_path / "flag")}})
    assert flag.secrets_dir == tmp_path / "flag"
