-- The principal goes back to its team of one.
-- $1 principal
DELETE FROM principal_teams WHERE principal = $1
