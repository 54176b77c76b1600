"""Policy decisions per second: cold compile + bind, and the cached per-message check.

A realistic fleet policy set: the least-privilege device policy (policy variables,
IsAttached condition), a thing-group policy with a Deny, and an operator-style policy
with several statements. Prints figures; asserts nothing (see bench/README.md).

    .venv/bin/python bench/policy_decisions.py
"""

from __future__ import annotations

import json
import time

from bastion.policy import Policy, RequestContext, bind, compile_policy_set, parse_policy

ARN = "arn:aws:iot:us-east-1:123456789012"


def fleet_policies() -> list[Policy]:
    thing = "${iot:Connection.Thing.ThingName}"
    device = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/{thing}",
         "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive", "iot:RetainPublish"],
         "Resource": [f"{ARN}:topic/{thing}/*", f"{ARN}:topic/$aws/things/{thing}/*"]},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": [f"{ARN}:topicfilter/{thing}/*", f"{ARN}:topicfilter/$aws/things/{thing}/*"]},
    ]}
    group = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Publish",
         "Resource": f"{ARN}:topic/site/${{iot:Connection.Thing.Attributes[site]}}/*"},
        {"Effect": "Deny", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": f"{ARN}:topic/{thing}/firmware/*"},
    ]}
    extra = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": [f"{ARN}:topicfilter/broadcast/{i}/*" for i in range(10)]},
        {"Effect": "Allow", "Action": "iot:Receive",
         "Resource": [f"{ARN}:topic/broadcast/{i}/*" for i in range(10)]},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/telemetry/*",
         "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "10.0.0.0/8"]}}},
    ]}
    return [Policy(name, parse_policy(json.dumps(doc)), "1")
            for name, doc in (("device", device), ("group", group), ("extra", extra))]


def context(i: int) -> RequestContext:
    name = f"sensor-{i}"
    return RequestContext(region="us-east-1", account="123456789012", client_id=name,
                          thing_name=name, is_attached=True,
                          thing_attributes={"site": f"plant-{i % 7}"},
                          certificate_subject={"CommonName": [name]}, source_ip="127.0.0.1")


def main() -> None:
    policies = fleet_policies()
    n = 2_000
    start = time.perf_counter()
    for i in range(n):
        bind(compile_policy_set(policies), context(i))
    cold = (time.perf_counter() - start) / n
    compiled = compile_policy_set(policies)
    start = time.perf_counter()
    for i in range(n):
        bind(compiled, context(i))
    bind_only = (time.perf_counter() - start) / n
    bound = bind(compiled, context(1))
    checks = [("iot:Publish", f"{ARN}:topic/sensor-1/temp"),
              ("iot:Publish", f"{ARN}:topic/sensor-2/temp"),
              ("iot:Receive", f"{ARN}:topic/broadcast/3/news"),
              ("iot:Publish", f"{ARN}:topic/sensor-1/firmware/x"),
              ("iot:Subscribe", f"{ARN}:topicfilter/$aws/things/sensor-1/shadow/#")]
    m = 200_000
    start = time.perf_counter()
    for j in range(m):
        action, resource = checks[j % len(checks)]
        bound.is_allowed(action, resource)
    uncached = (time.perf_counter() - start) / m
    cache: dict[tuple[str, str], bool] = {}
    start = time.perf_counter()
    for j in range(m):
        key = checks[j % len(checks)]
        decision = cache.get(key)
        if decision is None:
            decision = cache[key] = bound.is_allowed(*key)
    cached = (time.perf_counter() - start) / m
    print(f"policy set: {len(policies)} policies, "
          f"{sum(len(p.document.statements) for p in policies)} statements")
    print(f"cold compile + bind per connection: {cold * 1e6:9.1f} us  ({1 / cold:,.0f}/s)")
    print(f"bind (compiled set cached):          {bind_only * 1e6:9.1f} us  ({1 / bind_only:,.0f}/s)")
    print(f"decision, bound set:                 {uncached * 1e6:9.2f} us  ({1 / uncached:,.0f}/s)")
    print(f"decision, session cache hit:         {cached * 1e6:9.2f} us  ({1 / cached:,.0f}/s)")


if __name__ == "__main__":
    main()
