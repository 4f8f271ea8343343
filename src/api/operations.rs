//! Every operation that takes an API key, with the scope it requires: the one place a required
//! scope is written. The authorization check reads it ([`super::auth::BearerKey::authorize`]),
//! and the published spec carries it as `x-required-scopes` and as the sentence "Requires the
//! `…` scope." that ends the operation's description (the conformance suite reads the former).

use crate::domain::Scope;

/// An operation that takes an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ApiKeysCreate,
    ApiKeysList,
    ApiKeysDelete,
    ConsentsUpdate,
    ConsentsDelete,
    ConsentsView,
    LookupsCreate,
    LookupsView,
    MessagesCreate,
    MessagesList,
    MessagesEventsList,
    MessagesView,
    MessagesMediaView,
    MessagesCancel,
    NumbersList,
    TestHelpersInboundCreate,
    WebhookEndpointsCreate,
    WebhookEndpointsList,
    WebhookEndpointsGet,
    WebhookEndpointsUpdate,
    WebhookEndpointsDelete,
    WebhookEndpointsRotateSecret,
    WebhookEndpointsTest,
    WebhookDeliveriesList,
    WebhookDeliveriesRetry,
}

impl Operation {
    /// Every one of them.
    pub const ALL: [Operation; 25] = [
        Operation::ApiKeysCreate,
        Operation::ApiKeysList,
        Operation::ApiKeysDelete,
        Operation::ConsentsUpdate,
        Operation::ConsentsDelete,
        Operation::ConsentsView,
        Operation::LookupsCreate,
        Operation::LookupsView,
        Operation::MessagesCreate,
        Operation::MessagesList,
        Operation::MessagesEventsList,
        Operation::MessagesView,
        Operation::MessagesMediaView,
        Operation::MessagesCancel,
        Operation::NumbersList,
        Operation::TestHelpersInboundCreate,
        Operation::WebhookEndpointsCreate,
        Operation::WebhookEndpointsList,
        Operation::WebhookEndpointsGet,
        Operation::WebhookEndpointsUpdate,
        Operation::WebhookEndpointsDelete,
        Operation::WebhookEndpointsRotateSecret,
        Operation::WebhookEndpointsTest,
        Operation::WebhookDeliveriesList,
        Operation::WebhookDeliveriesRetry,
    ];

    /// Its `operationId` in the spec.
    pub fn id(self) -> &'static str {
        match self {
            Operation::ApiKeysCreate => "api_keys_create",
            Operation::ApiKeysList => "api_keys_list",
            Operation::ApiKeysDelete => "api_keys_delete",
            Operation::ConsentsUpdate => "consents_update",
            Operation::ConsentsDelete => "consents_delete",
            Operation::ConsentsView => "consents_view",
            Operation::LookupsCreate => "lookups_create",
            Operation::LookupsView => "lookups_view",
            Operation::MessagesCreate => "messages_create",
            Operation::MessagesList => "messages_list",
            Operation::MessagesEventsList => "messages_events_list",
            Operation::MessagesView => "messages_view",
            Operation::MessagesMediaView => "messages_media_view",
            Operation::MessagesCancel => "messages_cancel",
            Operation::NumbersList => "numbers_list",
            Operation::TestHelpersInboundCreate => "test_helpers_inbound_create",
            Operation::WebhookEndpointsCreate => "webhook_endpoints_create",
            Operation::WebhookEndpointsList => "webhook_endpoints_list",
            Operation::WebhookEndpointsGet => "webhook_endpoints_get",
            Operation::WebhookEndpointsUpdate => "webhook_endpoints_update",
            Operation::WebhookEndpointsDelete => "webhook_endpoints_delete",
            Operation::WebhookEndpointsRotateSecret => "webhook_endpoints_rotate_secret",
            Operation::WebhookEndpointsTest => "webhook_endpoints_test",
            Operation::WebhookDeliveriesList => "webhook_deliveries_list",
            Operation::WebhookDeliveriesRetry => "webhook_deliveries_retry",
        }
    }

    /// The scope a key must hold to call it (else 403 `FORBIDDEN`).
    pub fn scope(self) -> Scope {
        match self {
            Operation::ApiKeysCreate => Scope::ApiKeysWrite,
            Operation::ApiKeysList => Scope::ApiKeysRead,
            Operation::ApiKeysDelete => Scope::ApiKeysWrite,
            Operation::ConsentsUpdate => Scope::ConsentsWrite,
            Operation::ConsentsDelete => Scope::ConsentsWrite,
            Operation::ConsentsView => Scope::ConsentsRead,
            Operation::LookupsCreate => Scope::LookupsWrite,
            Operation::LookupsView => Scope::LookupsRead,
            Operation::MessagesCreate => Scope::MessagesSend,
            Operation::MessagesList => Scope::MessagesRead,
            Operation::MessagesEventsList => Scope::MessagesRead,
            Operation::MessagesView => Scope::MessagesRead,
            Operation::MessagesMediaView => Scope::MessagesRead,
            Operation::MessagesCancel => Scope::MessagesSend,
            Operation::NumbersList => Scope::NumbersRead,
            Operation::TestHelpersInboundCreate => Scope::MessagesSend,
            Operation::WebhookEndpointsCreate => Scope::WebhooksWrite,
            Operation::WebhookEndpointsList => Scope::WebhooksRead,
            Operation::WebhookEndpointsGet => Scope::WebhooksRead,
            Operation::WebhookEndpointsUpdate => Scope::WebhooksWrite,
            Operation::WebhookEndpointsDelete => Scope::WebhooksWrite,
            Operation::WebhookEndpointsRotateSecret => Scope::WebhooksWrite,
            Operation::WebhookEndpointsTest => Scope::WebhooksWrite,
            Operation::WebhookDeliveriesList => Scope::WebhooksRead,
            Operation::WebhookDeliveriesRetry => Scope::WebhooksWrite,
        }
    }

    /// Whether it spends a token of the organization's rate limit (sends and lookups).
    pub fn spends_rate_limit(self) -> bool {
        matches!(self, Operation::MessagesCreate | Operation::LookupsCreate)
    }

    /// The operation with this `operationId`, if it takes an API key.
    pub fn of(id: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.id() == id)
    }
}

#[cfg(test)]
mod tests {
    use super::Operation;

    /// Every operation of the spec that takes an API key has its scope here, every one here is
    /// in the spec, and the spec says the same scope in `x-required-scopes` and in its
    /// description.
    #[test]
    fn the_table_and_the_spec_name_the_same_operations_and_scopes() {
        let spec: serde_json::Value = serde_json::from_str(&crate::spec_json()).unwrap();
        let mut secured = Vec::new();
        for (_, item) in spec["paths"].as_object().unwrap() {
            for (_, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap();
                let keyed = op["security"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| s.get(super::super::auth::SCHEME).is_some());
                let declared = &op["x-required-scopes"];
                match Operation::of(id) {
                    Some(operation) => {
                        assert!(keyed, "{id} takes no API key but has a scope");
                        let scope = operation.scope().as_str();
                        assert_eq!(declared, &serde_json::json!([scope]), "{id}");
                        let sentence = format!("Requires the `{scope}` scope.");
                        assert!(
                            op["description"].as_str().unwrap().ends_with(&sentence),
                            "{id}"
                        );
                        secured.push(operation);
                    }
                    None => {
                        assert!(
                            !keyed,
                            "{id} takes an API key but has no scope in the table"
                        );
                        assert!(declared.is_null(), "{id}");
                    }
                }
            }
        }
        secured.sort_by_key(|o| o.id());
        let mut all = Operation::ALL.to_vec();
        all.sort_by_key(|o| o.id());
        assert_eq!(secured, all, "every operation of the table is in the spec");
    }
}
