"""What every process needs to run and be watched: connecting to Temporal
(`temporal_connection`), readiness (`readiness`), Prometheus metrics (`metrics`), logging
(`logs`), the embedded server of the worker's metrics and the API's operator listener
(`embedded_server`), and the TLS contexts of the process's HTTP and mail clients, built once
(`tls`)."""
