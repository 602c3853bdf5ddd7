-- The team each principal belongs to (its own name when it has none), and whether that team
-- has a quota: only those teams' creates take the team's lock.
-- $1 principals (a JSON array of strings)
SELECT p, t.team, EXISTS (SELECT 1 FROM quotas q WHERE q.team = t.team)
FROM jsonb_array_elements_text($1::jsonb) p,
     LATERAL (SELECT COALESCE((SELECT pt.team FROM principal_teams pt WHERE pt.principal = p), p) AS team) t
