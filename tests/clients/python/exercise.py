"""Exercises the Python client generated from AgentMessage's checked-in spec against a running
server: the seed's example send, reading it back, a two-page walk with a cursor, and the typed
422 and 453 errors. Run by the `clients` cargo test with BASE_URL, API_KEY, FROM, TO and
NOT_OPTED_IN set; any failed check raises."""

import os
import sys

from agent_message_client import AuthenticatedClient
from agent_message_client.api.messages import messages_create, messages_list, messages_view
from agent_message_client.models import (
    ErrorCode,
    ErrorEnvelope,
    MessageStatus,
    MessageViewEnvelope,
    MessageViewList,
    Priority,
    SendMessageRequest,
)

client = AuthenticatedClient(base_url=os.environ["BASE_URL"], token=os.environ["API_KEY"])
FROM, TO, NOT_OPTED_IN = os.environ["FROM"], os.environ["TO"], os.environ["NOT_OPTED_IN"]


def check(condition: bool, what: str) -> None:
    if not condition:
        sys.exit(f"python client: {what}")


# The seed's example.
seed = SendMessageRequest(
    from_=FROM, to=TO, text="hello from agentmessage", priority=Priority.DEFAULT, tag="order-7421"
)
sent = messages_create.sync_detailed(client=client, body=seed)
check(sent.status_code == 202, f"send answered {sent.status_code}")
check(isinstance(sent.parsed, MessageViewEnvelope), f"send parsed as {sent.parsed!r}")
message = sent.parsed.data
check(message.status == MessageStatus.QUEUED, f"status {message.status}")
check(message.tag == "order-7421" and message.from_ == FROM and message.to == TO, "echoed fields")
check(message.error_code is None, "a queued message has no error code")

# Read it back.
read = messages_view.sync_detailed(str(message.id), client=client)
check(read.status_code == 200 and isinstance(read.parsed, MessageViewEnvelope), "read back")
check(read.parsed.data.to_dict() == message.to_dict(), "read back differs from the send")

# Two more, then a walk of two pages of two.
for i in range(2):
    more = messages_create.sync_detailed(
        client=client, body=SendMessageRequest(from_=FROM, to=TO, text=f"page walk {i}")
    )
    check(more.status_code == 202, f"send {i} answered {more.status_code}")
first = messages_list.sync_detailed(client=client, limit=2)
check(isinstance(first.parsed, MessageViewList), f"first page parsed as {first.parsed!r}")
check(len(first.parsed.data) == 2 and first.parsed.has_more, "first page")
check(isinstance(first.parsed.next_cursor, str), "first page has a cursor")
second = messages_list.sync_detailed(client=client, limit=2, cursor=first.parsed.next_cursor)
check(isinstance(second.parsed, MessageViewList), f"second page parsed as {second.parsed!r}")
ids = [m.id for m in first.parsed.data + second.parsed.data]
check(len(ids) == 3 and len(set(ids)) == 3, f"the walk saw {ids}")
check(message.id in ids and not second.parsed.has_more, "the walk ends with the first message")

# 422: a bad recipient, with the failing field named.
bad = messages_create.sync_detailed(
    client=client, body=SendMessageRequest(from_=FROM, to="555-0100", text="hi")
)
check(bad.status_code == 422 and isinstance(bad.parsed, ErrorEnvelope), f"422: {bad.status_code}")
check(bad.parsed.error.code == ErrorCode.VALIDATION_FAILED, f"422 code {bad.parsed.error.code}")
check(bad.parsed.error.details["to"] == "must be E.164", "422 details")

# 453: a recipient who never opted in.
refused = messages_create.sync_detailed(
    client=client, body=SendMessageRequest(from_=FROM, to=NOT_OPTED_IN, text="hi")
)
check(refused.status_code == 453, f"453 answered {refused.status_code}")
check(isinstance(refused.parsed, ErrorEnvelope), f"453 parsed as {refused.parsed!r}")
check(refused.parsed.error.code == ErrorCode.CONSENT_REQUIRED, "453 code")
check(refused.headers["x-request-id"] == refused.parsed.error.request_id, "request id")

print("python client: every check passed")
