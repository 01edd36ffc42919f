"""Ironbeam (futures broker): its client and its venue adapter behind the OMS."""
