"""Ironhouse security: persistent CURVE keys, the whitelist, ZAP authentication, pairing."""
