"""Redis, provided by the deployment (broker, cache): its client (verify PINGs each configured server)."""
