-- $1 principal, $2 team
INSERT INTO principal_teams (principal, team) VALUES ($1, $2)
ON CONFLICT (principal) DO UPDATE SET team = EXCLUDED.team, updated_at = now()
