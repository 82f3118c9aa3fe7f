"""What every process needs to run and be watched: connecting to Temporal
(`temporal_connection`), readiness (`readiness`), Prometheus metrics (`metrics`), logging
(`logs`), the embedded server of the worker's metrics and the API's operator listener
(`embedded_server`), ending a process with its own exit code (`process_exit`), the TLS contexts
of the process's HTTP and mail clients, built once (`tls`), the worker's workflow sandbox
(`sandbox`), the in-memory moving window of rate limits (`moving_window`), and the garbage
collector's settings once a process has started (`heap`)."""
