//! progenitor: the client generated at build time from the checked-in spec (the
//! `agentmessage-client` crate) against a running server.

use agentmessage_client::{prelude::*, reqwest, types, Client, Error};

use crate::{Fixture, FROM, NOT_OPTED_IN, TO};

fn client(fixture: &Fixture) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", fixture.key).parse().unwrap(),
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    Client::new_with_client(&fixture.server.base_url, http)
}

fn send(from: &str, to: &str, text: &str) -> types::SendMessageRequest {
    types::SendMessageRequest {
        from: from.parse().unwrap(),
        to: to.parse().unwrap(),
        text: text.parse().unwrap(),
        priority: types::Priority::Default,
        tag: None,
        media_urls: None,
        send_at: None,
        validity_period: None,
    }
}

#[tokio::test]
async fn the_rust_client_sends_reads_walks_pages_and_gets_typed_errors() {
    let fixture = tokio::task::spawn_blocking(Fixture::start).await.unwrap();
    let client = client(&fixture);

    // The seed's example.
    let mut seed = send(FROM, TO, "hello from agentmessage");
    seed.tag = Some("order-7421".parse().unwrap());
    let sent = client.messages_create().body(seed).send().await.unwrap();
    assert_eq!(sent.status().as_u16(), 202);
    let message = sent.into_inner().data;
    assert_eq!(message.status, types::MessageStatus::Queued);
    assert_eq!(message.tag.as_deref(), Some("order-7421"));
    assert_eq!(message.error_code, None);

    // Read it back.
    let read = client
        .messages_view()
        .id(message.id.to_string())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serde_json::to_value(&read.data).unwrap(),
        serde_json::to_value(&message).unwrap()
    );

    // Two more, then a walk of two pages of two.
    for i in 0..2 {
        client
            .messages_create()
            .body(send(FROM, TO, &format!("page walk {i}")))
            .send()
            .await
            .unwrap();
    }
    let limit = std::num::NonZeroU32::new(2).unwrap();
    let first = client
        .messages_list()
        .limit(limit)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(first.has_more && first.data.len() == 2);
    let cursor = first.next_cursor.clone().expect("a cursor");
    let second = client
        .messages_list()
        .limit(limit)
        .cursor(cursor.parse::<types::Cursor>().unwrap())
        .send()
        .await
        .unwrap()
        .into_inner();
    let ids: std::collections::HashSet<_> = first
        .data
        .iter()
        .chain(&second.data)
        .map(|m| m.id)
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&message.id) && !second.has_more);

    // 422: the client's own types refuse a number outside the pattern before sending, so the
    // server's 422 is drawn with a well-formed sender the organization does not own.
    assert!("555-0100".parse::<types::PhoneNumber>().is_err());
    match client
        .messages_create()
        .body(send("+15559990000", TO, "hi"))
        .send()
        .await
    {
        Err(Error::ErrorResponse(response)) => {
            assert_eq!(response.status().as_u16(), 422);
            assert_eq!(response.error.code, types::ErrorCode::ValidationFailed);
            let details = &response.error.details;
            assert_eq!(
                details.get("from").map(String::as_str),
                Some("must be a number owned by your organization")
            );
        }
        other => panic!("422 expected, got {other:?}"),
    }

    // 453: a recipient who never opted in.
    match client
        .messages_create()
        .body(send(FROM, NOT_OPTED_IN, "hi"))
        .send()
        .await
    {
        Err(Error::ErrorResponse(response)) => {
            assert_eq!(response.status().as_u16(), 453);
            assert_eq!(response.error.code, types::ErrorCode::ConsentRequired);
            let request_id = response
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            assert_eq!(
                request_id.as_deref(),
                Some(response.error.request_id.as_str())
            );
        }
        other => panic!("453 expected, got {other:?}"),
    }
}
