"""Tradovate (futures broker): its client, its venue adapter behind the OMS, its shared session tokens."""
