"""Several server nodes on one PostgreSQL store: node identity, heartbeats and the cluster view."""
