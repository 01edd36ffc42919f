"""Venues behind the OMS: the sim venue and live broker/crypto adapters, all speaking :mod:`execution.venues.base`."""
