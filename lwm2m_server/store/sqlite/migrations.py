"""Versioned schema migrations for the SQLite store, applied in order on open; ``PRAGMA user_version`` holds the
version reached.

Version 1 is the schema every service used to create on its own start (``CREATE TABLE IF NOT EXISTS``), so a
data dir made before migrations existed (``user_version`` 0, some or all of these tables present) upgrades in
place: version 1 fills in what is missing and later versions change the shape. Each migration runs in its own
transaction with the version bump, so a crash mid-upgrade leaves the previous version intact. Never edit a
released migration: append a new one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import aiosqlite

from lwm2m_server.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


V1_BASELINE = """
CREATE TABLE IF NOT EXISTS registrations (
    endpoint TEXT PRIMARY KEY, reg_id TEXT NOT NULL UNIQUE, host TEXT NOT NULL, port INTEGER NOT NULL,
    lifetime INTEGER NOT NULL, lwm2m_version TEXT NOT NULL, binding TEXT NOT NULL, queue_mode INTEGER NOT NULL,
    root_path TEXT NOT NULL, content_formats TEXT NOT NULL, objects TEXT NOT NULL, instances TEXT NOT NULL,
    sms TEXT, registered_at REAL NOT NULL, updated_at REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (endpoint TEXT PRIMARY KEY, profile TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, type TEXT NOT NULL, endpoint TEXT, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_endpoint ON events (endpoint, id);
CREATE INDEX IF NOT EXISTS events_type ON events (type, id);
CREATE TABLE IF NOT EXISTS queued_requests (
    seq INTEGER PRIMARY KEY, endpoint TEXT NOT NULL, spec TEXT NOT NULL, payload BLOB NOT NULL,
    timeout REAL NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS queued_requests_endpoint ON queued_requests (endpoint, seq);
CREATE TABLE IF NOT EXISTS ota_jobs (
    id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, package_sha256 TEXT NOT NULL, kind TEXT NOT NULL,
    requested_method TEXT, method TEXT, phase TEXT NOT NULL, attempt INTEGER NOT NULL, cause TEXT, result INTEGER,
    detail TEXT NOT NULL DEFAULT '', progress TEXT NOT NULL DEFAULT '{}', options TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS ota_jobs_endpoint ON ota_jobs (endpoint, created_at);
CREATE INDEX IF NOT EXISTS ota_jobs_phase ON ota_jobs (phase);
CREATE TABLE IF NOT EXISTS ota_job_history (
    job_id TEXT NOT NULL, ts REAL NOT NULL, from_phase TEXT NOT NULL, to_phase TEXT NOT NULL,
    attempt INTEGER NOT NULL, note TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS ota_job_history_job ON ota_job_history (job_id, ts);
CREATE TABLE IF NOT EXISTS ota_packages (
    sha256 TEXT PRIMARY KEY, kind TEXT NOT NULL, size INTEGER NOT NULL, name TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '', payload_sha256 TEXT NOT NULL, variant TEXT NOT NULL DEFAULT '',
    arena_bytes INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL, current_wave INTEGER NOT NULL DEFAULT 0,
    wave_count INTEGER NOT NULL DEFAULT 0, reason TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rollout_devices (
    rollout_id TEXT NOT NULL, endpoint TEXT NOT NULL, wave INTEGER NOT NULL, class_key TEXT,
    state TEXT NOT NULL, cause TEXT, job_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL,
    PRIMARY KEY (rollout_id, endpoint));
CREATE INDEX IF NOT EXISTS rollout_devices_state ON rollout_devices (rollout_id, state);
CREATE TABLE IF NOT EXISTS rollout_classes (
    rollout_id TEXT NOT NULL, class_key TEXT NOT NULL, target TEXT, variant TEXT, package_sha TEXT, payload_sha TEXT,
    size INTEGER, arena_bytes INTEGER, accuracy REAL, reason TEXT, report TEXT,
    PRIMARY KEY (rollout_id, class_key));
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, rollout_id TEXT, endpoint TEXT,
    actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT);
CREATE INDEX IF NOT EXISTS audit_rollout ON audit (rollout_id);
CREATE INDEX IF NOT EXISTS audit_endpoint ON audit (endpoint);
CREATE INDEX IF NOT EXISTS audit_action ON audit (action);
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL, revoked_at REAL);
CREATE TABLE IF NOT EXISTS send_values (
    id INTEGER PRIMARY KEY AUTOINCREMENT, endpoint TEXT NOT NULL, path TEXT NOT NULL, ts REAL NOT NULL,
    value TEXT NOT NULL, received_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS send_values_endpoint ON send_values (endpoint, ts);
"""

# The job history had no key of its own and was ordered by SQLite's implicit rowid: give it an explicit id
# (keeping the order), which is also what any other SQL engine needs. Event queries by time get an index.
V2_HISTORY_ID = """
CREATE TABLE ota_job_history_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, ts REAL NOT NULL, from_phase TEXT NOT NULL,
    to_phase TEXT NOT NULL, attempt INTEGER NOT NULL, note TEXT NOT NULL DEFAULT '');
INSERT INTO ota_job_history_v2 (job_id, ts, from_phase, to_phase, attempt, note)
    SELECT job_id, ts, from_phase, to_phase, attempt, note FROM ota_job_history ORDER BY rowid;
DROP TABLE ota_job_history;
ALTER TABLE ota_job_history_v2 RENAME TO ota_job_history;
CREATE INDEX ota_job_history_job ON ota_job_history (job_id, id);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
"""

V3_LEASES = """
CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL);
"""

# Device credentials (DTLS PSK, keys sealed by the credential service's key file) and each registration's
# security mode.
V4_CREDENTIALS = """
ALTER TABLE registrations ADD COLUMN security TEXT NOT NULL DEFAULT 'none';
CREATE TABLE device_credentials (
    endpoint TEXT PRIMARY KEY, identity TEXT NOT NULL, key_enc TEXT NOT NULL, security_mode TEXT NOT NULL,
    created_at REAL NOT NULL, rotated_at REAL, revoked_at REAL);
CREATE INDEX device_credentials_identity ON device_credentials (identity);
"""

V5_NODES = """
CREATE TABLE nodes (node_id TEXT PRIMARY KEY, started_at REAL NOT NULL, last_seen REAL NOT NULL,
    info TEXT NOT NULL DEFAULT '{}');
ALTER TABLE registrations ADD COLUMN node_id TEXT;
CREATE INDEX registrations_node ON registrations (node_id);
"""

# Per-endpoint bootstrap configs (the bootstrap server's /bs provisions them).
V6_BOOTSTRAP = """
CREATE TABLE bootstrap_configs (
    endpoint TEXT PRIMARY KEY, server_uri TEXT NOT NULL, security_mode TEXT NOT NULL, lifetime BIGINT NOT NULL,
    binding TEXT NOT NULL, ssid INTEGER NOT NULL, delete_first INTEGER NOT NULL, created_at REAL NOT NULL);
"""

# Package bytes in the store, so every node sharing it can serve /fw/<sha> and push any package; the files under
# <data_dir>/packages/ become a per-node cache (rows written before this are backfilled from it on start).
V7_PACKAGE_BLOBS = """
CREATE TABLE ota_package_blobs (sha256 TEXT PRIMARY KEY, data BLOB NOT NULL);
"""

# The fingerprints of the secrets every node sharing the store must hold (first node to start records them).
V8_KEY_FINGERPRINTS = """
CREATE TABLE key_fingerprints (name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, node_id TEXT NOT NULL,
    recorded_at REAL NOT NULL);
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


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]


async def current_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def migrate(conn: aiosqlite.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Apply every migration above the file's version (each in one transaction); returns the version reached."""
    version = await current_version(conn)
    if version > migrations[-1].version:
        raise RuntimeError(f"store schema version {version} is newer than this server knows "
                           f"({migrations[-1].version}): upgrade the server")
    for m in migrations:
        if m.version <= version:
            continue
        try:
            await conn.execute("BEGIN IMMEDIATE")
            for statement in _statements(m.sql):
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {int(m.version)}")
            await conn.execute("COMMIT")
        except sqlite3.Error:
            await conn.execute("ROLLBACK")
            raise
        log.info("store_migrated", version=m.version, name=m.name)
        version = m.version
    return version
