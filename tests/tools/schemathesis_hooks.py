"""schemathesis hooks for AgentMessage's stateful run (tests/conformance/schemathesis.rs).

A client sends each new request under a new Idempotency-Key: the server answers a key it has
seen with the same body by replaying the recorded answer, which may name a resource deleted
since (correctly: the replay is the first answer, `Idempotent-Replayed: true`). Generated keys
repeat (the spec's example, short strings), so each is replaced by a fresh UUID, as a client's
would be; the suite proves the replays themselves.
"""

import uuid

import schemathesis


@schemathesis.hook
def map_headers(ctx, headers):
    if headers is not None and "Idempotency-Key" in headers:
        headers["Idempotency-Key"] = str(uuid.uuid4())
    return headers
