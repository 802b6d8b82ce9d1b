"""Console pages, one module per area: ops (queues, workers, jobs), tenants, economics, support."""
