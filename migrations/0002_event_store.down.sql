-- backstop:destroys-data-in stop_events, stop_executions, outbox
DROP TABLE outbox;
DROP TABLE stop_executions;
DROP TABLE stop_events;
DROP FUNCTION stop_events_append_only();
