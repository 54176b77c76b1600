"""Test support: a Bastion running in a background thread, and real MQTT clients for it."""
