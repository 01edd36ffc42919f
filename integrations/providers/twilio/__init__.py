"""Twilio (SMS alerts and 2FA codes): its client (verify fetches the account)."""
