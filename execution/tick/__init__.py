"""The tick: the batch pipeline (batches), one bot's decision (decide) and replay over stored bars (replay)."""
