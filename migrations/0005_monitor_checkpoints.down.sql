-- backstop:destroys-data-in monitor_checkpoint
DROP VIEW operation_check_status;
DROP TABLE monitor_checkpoint;
