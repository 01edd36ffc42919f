"""The tick: the batch pipeline (batches), one bot's decision (decide), when a batch is too late (lateness) and
replay over stored bars (replay)."""
