-- kind ('controller' / 'session'), key, count: controllers by status, sessions by phase.
SELECT 'controller', status, count(*) FROM controllers GROUP BY status
UNION ALL
SELECT 'session', phase, count(*) FROM sessions GROUP BY phase
