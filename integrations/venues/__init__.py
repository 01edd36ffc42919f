"""What every venue adapter speaks to the OMS (``base``, ``errors``), the send ledger written before each live send,
and the registry of live adapters. The sim venue is execution's own (``execution.orders.paper_venue``)."""
