-- A node that stops gracefully hands its name back (issue "Tenant isolation"): a Kubernetes
-- node pod that is replaced (a DaemonSet update, a drain, a graceful node shutdown) loses its
-- memory-backed key, and its successor on the same node must be able to claim the name with
-- the join token. A released name stays bound to its key, which may take it back (the same
-- process restarted with its certificate), until a join token claims it; then that key no
-- longer renews. A node that vanished without releasing holds its name until an admin frees it.
ALTER TABLE node_identities ADD COLUMN released_at timestamptz;
