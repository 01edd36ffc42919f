"""One folder per provider (``<name>/``: its client, its venue adapter where it trades, its verify and the fake
server its tests run against), and beside them what several providers share: the client base (``base``), the
futures brokers' base and contract rules, the ccxt client and venue adapter of the crypto venues, the market-data
bar and the model-list base of the AI providers."""
