-- Every principal an admin put in a team, by team.
SELECT team, principal FROM principal_teams ORDER BY team, principal
