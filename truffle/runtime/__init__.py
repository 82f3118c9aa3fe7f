"""What every process needs to run and be watched: connecting to Temporal
(`temporal_connection`), readiness (`readiness`), Prometheus metrics (`metrics`), logging
(`logs`) and the embedded server of the worker's metrics and the API's operator listener
(`embedded_server`)."""
