"""Broker limits. Defaults follow AWS IoT Core's quotas where they make sense."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BrokerLimits:
    max_payload_bytes: int = 131_072          # AWS: 128 KB per PUBLISH
    max_packet_bytes: int = 149_504           # AWS: 146 KB per MQTT 5 packet
    max_topic_bytes: int = 256                # AWS: 256 bytes of UTF-8
    max_topic_levels: int = 8                 # AWS: at most 7 forward slashes
    max_client_id_bytes: int = 128            # AWS: 128 bytes
    max_filters_per_subscribe: int = 8        # AWS: 8 per SUBSCRIBE
    max_subscriptions_per_session: int = 50   # AWS: 50 per connection (adjustable)
    max_inflight_messages: int = 100          # AWS: 100 unacknowledged QoS 1 each way
    max_queued_messages: int = 1_000          # per session, in memory behind the window
    max_stored_messages: int = 100_000        # per persistent session, in memory and stored
    max_queued_bytes: int = 64 * 1024 * 1024  # payload bytes queued per session
    max_retained_messages: int = 500_000      # AWS: 500,000 retained messages per account
    queue_memory_budget_bytes: int = 512 * 1024 * 1024  # every session's queue together;
    # past it, publishers are held back (all alike) until queues drain below 3/4 of it
    max_write_buffer_bytes: int = 4 * 1024 * 1024   # QoS 0 is dropped for a slower reader
    topic_alias_maximum: int = 8
    max_keep_alive: int = 1200                # AWS: 30..1200 s; 0 means "use the maximum"
    min_keep_alive: int = 0
    max_session_expiry: int = 604_800         # AWS: up to 7 days
    default_session_expiry: int = 3_600       # 3.1.1 persistent sessions: AWS's 1 hour
    connect_timeout: float = 10.0             # TCP+TLS up to the CONNECT packet
    tls_handshake_timeout: float = 10.0
    maximum_qos: int = 2
