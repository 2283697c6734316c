-- backstop:destroys-data-in tenant_config, circuit_breaker_state
DROP TABLE circuit_breaker_state;
DROP TABLE tenant_config;
