"""Versioned schema migrations for the PostgreSQL store, applied in order on open; ``schema_version`` holds the
version reached. The same versions as the SQLite store (:mod:`lwm2m_server.store.sqlite.migrations`), written
for PostgreSQL: identity keys instead of AUTOINCREMENT, DOUBLE PRECISION times, BYTEA payloads. Every migration
runs in one transaction under an advisory lock, so several nodes starting at once migrate exactly once.
"""

from __future__ import annotations

import asyncpg

from lwm2m_server.logging import get_logger
from lwm2m_server.store.sqlite.migrations import Migration

log = get_logger(__name__)

LOCK_KEY = 0x746D6C6D  # "tmlm": the advisory lock serializing migrations across nodes

V1_BASELINE = """
CREATE TABLE registrations (
    endpoint TEXT PRIMARY KEY, reg_id TEXT NOT NULL UNIQUE, host TEXT NOT NULL, port INTEGER NOT NULL,
    lifetime BIGINT NOT NULL, lwm2m_version TEXT NOT NULL, binding TEXT NOT NULL, queue_mode INTEGER NOT NULL,
    root_path TEXT NOT NULL, content_formats TEXT NOT NULL, objects TEXT NOT NULL, instances TEXT NOT NULL,
    sms TEXT, registered_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL);
CREATE TABLE profiles (endpoint TEXT PRIMARY KEY, profile TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL);
CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, type TEXT NOT NULL,
    endpoint TEXT, data TEXT NOT NULL);
CREATE INDEX events_endpoint ON events (endpoint, id);
CREATE INDEX events_type ON events (type, id);
CREATE TABLE queued_requests (
    seq BIGINT PRIMARY KEY, endpoint TEXT NOT NULL, spec TEXT NOT NULL, payload BYTEA NOT NULL,
    timeout DOUBLE PRECISION NOT NULL, created_at DOUBLE PRECISION NOT NULL);
CREATE INDEX queued_requests_endpoint ON queued_requests (endpoint, seq);
CREATE TABLE ota_jobs (
    id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, package_sha256 TEXT NOT NULL, kind TEXT NOT NULL,
    requested_method TEXT, method TEXT, phase TEXT NOT NULL, attempt INTEGER NOT NULL, cause TEXT, result INTEGER,
    detail TEXT NOT NULL DEFAULT '', progress TEXT NOT NULL DEFAULT '{}', options TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL);
CREATE INDEX ota_jobs_endpoint ON ota_jobs (endpoint, created_at);
CREATE INDEX ota_jobs_phase ON ota_jobs (phase);
CREATE TABLE ota_job_history (
    job_id TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, from_phase TEXT NOT NULL, to_phase TEXT NOT NULL,
    attempt INTEGER NOT NULL, note TEXT NOT NULL DEFAULT '');
CREATE INDEX ota_job_history_job ON ota_job_history (job_id, ts);
CREATE TABLE ota_packages (
    sha256 TEXT PRIMARY KEY, kind TEXT NOT NULL, size BIGINT NOT NULL, name TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '', payload_sha256 TEXT NOT NULL, variant TEXT NOT NULL DEFAULT '',
    arena_bytes BIGINT NOT NULL DEFAULT 0, created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE rollouts (
    id TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL, current_wave INTEGER NOT NULL DEFAULT 0,
    wave_count INTEGER NOT NULL DEFAULT 0, reason TEXT, created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL);
CREATE TABLE rollout_devices (
    rollout_id TEXT NOT NULL, endpoint TEXT NOT NULL, wave INTEGER NOT NULL, class_key TEXT,
    state TEXT NOT NULL, cause TEXT, job_id TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (rollout_id, endpoint));
CREATE INDEX rollout_devices_state ON rollout_devices (rollout_id, state);
CREATE TABLE rollout_classes (
    rollout_id TEXT NOT NULL, class_key TEXT NOT NULL, target TEXT, variant TEXT, package_sha TEXT, payload_sha TEXT,
    size BIGINT, arena_bytes BIGINT, accuracy DOUBLE PRECISION, reason TEXT, report TEXT,
    PRIMARY KEY (rollout_id, class_key));
CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, rollout_id TEXT,
    endpoint TEXT, actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT);
CREATE INDEX audit_rollout ON audit (rollout_id);
CREATE INDEX audit_endpoint ON audit (endpoint);
CREATE INDEX audit_action ON audit (action);
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
    created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION);
CREATE TABLE send_values (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, endpoint TEXT NOT NULL, path TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL, value TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL);
CREATE INDEX send_values_endpoint ON send_values (endpoint, ts);
"""

V2_HISTORY_ID = """
ALTER TABLE ota_job_history ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
DROP INDEX ota_job_history_job;
CREATE INDEX ota_job_history_job ON ota_job_history (job_id, id);
CREATE INDEX events_ts ON events (ts);
"""

V3_LEASES = """
CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL);
"""

# Device credentials (DTLS PSK, keys sealed by the credential service's key file) and each registration's
# security mode.
V4_CREDENTIALS = """
ALTER TABLE registrations ADD COLUMN security TEXT NOT NULL DEFAULT 'none';
CREATE TABLE device_credentials (
    endpoint TEXT PRIMARY KEY, identity TEXT NOT NULL, key_enc TEXT NOT NULL, security_mode TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, rotated_at DOUBLE PRECISION, revoked_at DOUBLE PRECISION);
CREATE INDEX device_credentials_identity ON device_credentials (identity);
"""

V5_NODES = """
CREATE TABLE nodes (node_id TEXT PRIMARY KEY, started_at DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL, info TEXT NOT NULL DEFAULT '{}');
ALTER TABLE registrations ADD COLUMN node_id TEXT;
CREATE INDEX registrations_node ON registrations (node_id);
"""

# Per-endpoint bootstrap configs (the bootstrap server's /bs provisions them).
V6_BOOTSTRAP = """
CREATE TABLE bootstrap_configs (
    endpoint TEXT PRIMARY KEY, server_uri TEXT NOT NULL, security_mode TEXT NOT NULL, lifetime BIGINT NOT NULL,
    binding TEXT NOT NULL, ssid INTEGER NOT NULL, delete_first BOOLEAN NOT NULL, created_at DOUBLE PRECISION NOT NULL);
"""

# Package bytes in the store, so every node sharing it can serve /fw/<sha> and push any package.
V7_PACKAGE_BLOBS = """
CREATE TABLE ota_package_blobs (sha256 TEXT PRIMARY KEY, data BYTEA NOT NULL);
"""

# The fingerprints of the secrets every node sharing the store must hold (first node to start records them).
V8_KEY_FINGERPRINTS = """
CREATE TABLE key_fingerprints (name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, node_id TEXT NOT NULL,
    recorded_at DOUBLE PRECISION NOT NULL);
"""

# The node running each OTA job (several nodes on one store): a node resumes only its own jobs, and adopts
# another's when the device registers through it.
V9_JOB_OWNER = """
ALTER TABLE ota_jobs ADD COLUMN node_id TEXT;
CREATE INDEX ota_jobs_node ON ota_jobs (node_id);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline: the tables of every service", V1_BASELINE),
    Migration(2, "ota_job_history gets an id; events by time", V2_HISTORY_ID),
    Migration(3, "leases (one holder per name across nodes)", V3_LEASES),
    Migration(4, "device credentials; registrations carry their security mode", V4_CREDENTIALS),
    Migration(5, "nodes with heartbeat; each registration's owning node", V5_NODES),
    Migration(6, "per-endpoint bootstrap configs", V6_BOOTSTRAP),
    Migration(7, "package bytes in the store (shared by every node)", V7_PACKAGE_BLOBS),
    Migration(8, "fingerprints of the secrets shared by every node", V8_KEY_FINGERPRINTS),
    Migration(9, "each OTA job's owning node", V9_JOB_OWNER),
)
LATEST = MIGRATIONS[-1].version


async def current_version(conn: asyncpg.Connection) -> int:
    await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    value = await conn.fetchval("SELECT MAX(version) FROM schema_version")
    return int(value or 0)


async def migrate(conn: asyncpg.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Apply every migration above the database's version; returns the version reached."""
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        version = await current_version(conn)
        if version > migrations[-1].version:
            raise RuntimeError(f"store schema version {version} is newer than this server knows "
                               f"({migrations[-1].version}): upgrade the server")
        for m in migrations:
            if m.version <= version:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)  # a script: asyncpg runs multi-statement text without parameters
                await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", m.version)
            log.info("store_migrated", backend="postgres", version=m.version, name=m.name)
            version = m.version
        return version
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
