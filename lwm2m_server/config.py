"""Typed settings loaded from TOML, then overridden by env vars and command-line flags.

Precedence, lowest first: built-in defaults < ``config/tinymlaas.toml`` (or ``--config``) <
``TINYMLAAS_<SECTION>__<KEY>`` environment variables < explicit overrides (CLI flags).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError, model_validator

from compilers.sizes import parse_size
from lwm2m_server import resources

ENV_PREFIX = "TINYMLAAS_"
DEFAULT_CONFIG = resources.DEFAULT_CONFIG

Size = Annotated[int, BeforeValidator(lambda v: parse_size(v) if isinstance(v, str) else v), Field(ge=0)]
"""A byte count in config: an int or a size string read by the one size parser (``"4KiB"``)."""


def default_cache_dir() -> Path:
    """The per-user compile cache that ``tinymlaas compile``, ``serve`` and ``demo`` share by default, so a zoo
    model trained by one is reused by the others: ``$XDG_CACHE_HOME/tinymlaas/compile-cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinymlaas" / "compile-cache"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    coap_host: str = "::"
    coap_port: int = 5683
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    data_dir: Path = Path("./data")
    secrets_dir: str = ""  # package signing key + credentials.key; "" = data_dir. Every node of a cluster: the same
    public_coap_uri: str = ""
    registration_grace_s: float = 15.0
    queue_mode_window_s: float = 93.0
    max_queued_requests: int = 64
    request_timeout_s: float = 30.0
    coap_fast_path: bool = True
    coap_fast_push: bool = True  # with coap_fast_path: Block1 pushes sent by the fast path's own CON client
    inventory_concurrency: int = Field(default=64, ge=1)
    gc_threshold0: int = Field(default=700, ge=1)  # generation-0 threshold (CPython's default; measured best)
    gc_full_interval_s: float = Field(default=600.0, ge=0)  # full collections on a timer; 0 = CPython's automatic
    loop_stall_log_ms: float = Field(default=0.0, ge=0)  # log event-loop stalls this long, with stacks; 0 = off


class CoapSettings(_Section):
    """The device-facing listeners: plain CoAP (``[server] coap_host/coap_port``) and CoAP over DTLS (coaps)."""

    plain: bool = True  # false: no plain CoAP listener at all (production: DTLS only)
    secure: bool = False  # the coaps listener (DTLS 1.2 PSK)
    coaps_host: str = ""  # "" = [server] coap_host
    coaps_port: int = 5684
    public_coaps_uri: str = ""  # pull URIs for DTLS devices, e.g. "coaps://192.0.2.1:5684"; "" = derive
    max_handshakes: int = Field(default=256, ge=1)  # unfinished DTLS handshakes held at once
    handshake_timeout_s: float = Field(default=10.0, gt=0)  # an unfinished handshake is dropped after this
    max_sessions: int = Field(default=100_000, ge=1)  # established sessions (least recently used closed first)


class StoreSettings(_Section):
    backend: Literal["sqlite", "postgres"] = "sqlite"
    path: str = ""  # sqlite: the file ("" = <data_dir>/tinymlaas.sqlite3)
    dsn: str = ""  # postgres: e.g. "postgresql://postgres@127.0.0.1:5432/tinymlaas"
    batch_max: int = 512
    batch_window_ms: float = 5.0
    event_retention_days: float = Field(default=7.0, ge=0)
    event_max_rows: int = Field(default=1_000_000, ge=0)
    event_prune_interval_s: float = Field(default=300.0, gt=0)
    event_log_types: tuple[str, ...] = ("*",)  # event types appended to the event log; "*" = every type
    event_log_skip: tuple[str, ...] = ()  # ... except these (a fleet: "notification", "ota.progress")

    def event_logged(self, event_type: str) -> bool:
        """Whether an event of ``event_type`` is appended to the store's event log."""
        if event_type in self.event_log_skip:
            return False
        return "*" in self.event_log_types or event_type in self.event_log_types

    @model_validator(mode="after")
    def _dsn_for_postgres(self) -> StoreSettings:
        if self.backend == "postgres" and not self.dsn:
            raise ValueError('backend "postgres" needs a dsn, e.g. postgresql://postgres@127.0.0.1:5432/tinymlaas')
        return self


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class OtaSettings(_Section):
    block_size: Literal[16, 32, 64, 128, 256, 512, 1024] = 1024
    prefer: Literal["pull", "push"] = "pull"
    max_retries: int = 3
    retry_backoff_s: float = 2.0
    poll_interval_s: float = 5.0
    timeout_s: float = 300.0


class CompileSettings(_Section):
    cache_dir: str = ""
    workers: int = 2
    accuracy_margin: float = 1.0
    flash_margin_bytes: Size = 4096
    runtime_overhead_bytes: Size = 2048


class RolloutSettings(_Section):
    max_concurrency: int = 50
    rate_per_minute: float = 0.0
    error_threshold_pct: float = 20.0
    success_threshold_pct: float = 100.0


class ApiSettings(_Section):
    metrics_open: bool = False  # true: /metrics needs no token (only for a port reachable by the scraper alone)
    query_token: bool = True  # /api/events also takes ?access_token= (EventSource cannot send headers)
    refusal_window_s: float = Field(default=60.0, gt=0)  # refused requests are aggregated per window ...
    refusal_max_keys: int = Field(default=100, ge=1)  # ... over at most this many (status, reason, client) keys


class MqttSettings(_Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "tinymlaas"
    max_buffer: int = 10000
    username: str = ""
    password: SecretStr = SecretStr("")  # never shown by repr() or in logs
    tls: bool = False  # TLS to the broker; the CA/cert/key paths below imply it
    ca_file: str = ""  # broker CA bundle ("" = system CAs)
    cert_file: str = ""  # client certificate (mutual TLS)
    key_file: str = ""
    allow_commands: bool = False  # accept rollout commands over MQTT (anyone who may publish there commands)


class ClusterSettings(_Section):
    node_id: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_.:-]*$")  # "" = <host>-<random>, kept
    heartbeat_s: float = Field(default=5.0, gt=0)  # how often a node refreshes its row in `nodes`
    node_timeout_s: float = Field(default=15.0, gt=0)  # a node not seen for this long is reported dead
    forward_timeout_s: float = Field(default=35.0, gt=0)  # a request forwarded to the owning node: then 504
    lease_ttl_s: float = Field(default=10.0, gt=0)  # a rollout's leader lease; renewed every ttl/3, taken over after
    relay_events: bool = True  # every node's SSE stream (and MQTT bridge) sees the events of all nodes
    relay_batch_ms: float = Field(default=50.0, ge=0, le=10_000)  # events gathered this long per NOTIFY batch
    relay_buffer: int = Field(default=10_000, ge=1)  # events waiting to be relayed; past it the oldest are dropped
    relay_mqtt: bool = False  # the MQTT bridge also publishes other nodes' events (on: each node has its own broker)


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    coap: CoapSettings = CoapSettings()
    store: StoreSettings = StoreSettings()
    logging: LoggingSettings = LoggingSettings()
    ota: OtaSettings = OtaSettings()
    compile: CompileSettings = CompileSettings()
    rollouts: RolloutSettings = RolloutSettings()
    mqtt: MqttSettings = MqttSettings()
    api: ApiSettings = ApiSettings()
    cluster: ClusterSettings = ClusterSettings()

    @property
    def store_path(self) -> Path:
        return Path(self.store.path) if self.store.path else self.server.data_dir / "tinymlaas.sqlite3"

    @property
    def secrets_dir(self) -> Path:
        """Where the package signing key and the credentials key live (shared by every node of a cluster)."""
        return Path(self.server.secrets_dir) if self.server.secrets_dir else self.server.data_dir

    @property
    def compile_cache_dir(self) -> Path:
        return Path(self.compile.cache_dir).expanduser() if self.compile.cache_dir else default_cache_dir()


class ConfigError(ValueError):
    """A config file, env var or override that cannot be applied; the message names it."""


def _env_value(text: str) -> Any:
    """An env var's value as TOML would read it (``1024`` -> int, ``true`` -> bool), else the plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        section, _, name = key[len(ENV_PREFIX) :].lower().partition("__")
        out.setdefault(section, {})[name] = _env_value(value)
    return out


def _merge(base: dict[str, Any], extra: Mapping[str, Mapping[str, Any]]) -> None:
    for section, values in extra.items():
        if not isinstance(values, Mapping):
            raise ConfigError(f"[{section}] must be a table")
        base.setdefault(section, {}).update(values)


def load_settings(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Load settings; ``overrides`` is ``{"server": {"coap_port": 5684}}`` from CLI flags (None values skipped)."""
    data: dict[str, Any] = {}
    cfg = path if path is not None else DEFAULT_CONFIG
    if path is not None or cfg.exists():
        try:
            data = tomllib.loads(cfg.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {cfg}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{cfg}: {exc}") from exc
    _merge(data, _env_overrides(os.environ if environ is None else environ))
    if overrides:
        _merge(data, {s: {k: v for k, v in vals.items() if v is not None} for s, vals in overrides.items()})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration ({cfg}): {problems}") from exc
