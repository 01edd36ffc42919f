"""Arbitrage scanners as bots (issue 18): the tick layer of quote strategies.

A scanner bot names a quote strategy (``bots.strategies.quotes.QuoteStrategy``). Beat's ``execution.dispatch_scans``
scans every tenant's running scanner bots every ``ARB_SCAN_INTERVAL_SECONDS``: ``scanner.scan_tenant`` gathers the
usable quotes, the fee schedule and the bot's venue inventory (``snapshot``), applies the same trading rule, gates
and risk checks as the bar tick, calls the strategy's pure ``scan``, writes the ``arb_spreads`` rows, ONE trace per
scan, and at most one multi-leg intent. ``pnl`` settles ``arb_pnl`` per intent; ``replay`` runs the same scan over
recorded quotes.

Paper: every stage but LIVE trades on the sim twins of the venues (``sim-kraken``...), filled against the recorded
quotes by ``execution.orders.quote_fills.match_quote_orders``.
"""
