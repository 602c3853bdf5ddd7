-- Node enrolment (issue "Tenant isolation"): join tokens an admin issues per role, and the
-- certificate key each node name is bound to, so that a join token never mints a certificate
-- for a name a registered node holds.

-- A join token's secret is stored only as SHA-256; the secret is shown once, at creation.
CREATE TABLE join_tokens (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  role          text NOT NULL CHECK (role IN ('controller', 'worker')),
  -- NULL: any name not held by a registered node; else exactly this name, which it may take
  -- over (how an admin gives a lost node's name to its replacement).
  node_name     text,
  secret_sha256 text NOT NULL UNIQUE,
  expires_at    timestamptz NOT NULL,
  max_uses      integer NOT NULL CHECK (max_uses > 0),
  uses          integer NOT NULL DEFAULT 0 CHECK (uses <= max_uses),
  created_by    text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz,
  revoked_at    timestamptz
);

-- Who holds a node name: the SHA-256 of the public key of the certificate last issued for it
-- (by a join token or a renewal), or of the one it first registered with. Deleted with the
-- controller by an admin, which frees the name.
CREATE TABLE node_identities (
  role       text NOT NULL CHECK (role IN ('controller', 'worker')),
  name       text NOT NULL,
  key_sha256 text NOT NULL,
  -- The key it renewed from: the node's open connections still present that certificate for a
  -- while, and it is the same node. NULL after a join token bound to the name took it over.
  previous_key_sha256 text,
  -- How the key was bound: 'join token <id>', 'cluster join token', 'renewal', 'registration'.
  bound_by   text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (role, name)
);
