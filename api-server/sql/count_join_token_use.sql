-- $1 id: one more certificate minted with it.
UPDATE join_tokens SET uses = uses + 1, last_used_at = now() WHERE id = $1::uuid
