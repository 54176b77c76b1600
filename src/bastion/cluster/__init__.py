"""Cluster mode: Bastion nodes sharing sessions and messages through NATS JetStream.

So far: the encoding of MQTT topics and topic filters as NATS subjects::

    codec = SubjectCodec("bastion.msg")
    codec.encode_topic("$aws/things/x/shadow/update")  # "bastion.msg.d.aws.things.x.shadow.update"
    codec.encode_filter("sport/#")        # ("bastion.msg.t.sport", "bastion.msg.t.sport.>")
    codec.decode_topic(subject)           # the topic a message arrived on
"""

from __future__ import annotations

from ._subjects import DEFAULT_SUBJECT_PREFIX, SubjectCodec

__all__ = ["DEFAULT_SUBJECT_PREFIX", "SubjectCodec"]
