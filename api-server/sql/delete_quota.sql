-- $1 team
DELETE FROM quotas WHERE team = $1 RETURNING team
