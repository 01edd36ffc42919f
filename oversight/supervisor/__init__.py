"""The autonomy supervisor: one loop, one instance (heartbeat), thresholds per tenant (thresholds), what it
measures (triggers), what it does (ladder) and the pass over every tenant (sweep). README "The supervisor"."""
