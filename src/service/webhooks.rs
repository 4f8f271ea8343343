//! Webhook endpoints: registering them (the destination checked, the secret sealed), rotating
//! their secrets, and the deliveries the dispatcher makes and clients inspect.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{auth::Caller, Error, FieldErrors, Services};
use crate::{
    domain::{
        idempotency::{Completion, SEALED_PREFIX},
        webhooks::{
            forbidden_destination, new_secret, CreatedEndpoint, DueDelivery, EndpointChanges,
            Outcome, SealingKeys, WebhookDelivery, WebhookEndpoint, WebhookEventType,
            MOST_ROTATED_SIGNING,
        },
        Timestamp,
    },
    store::webhooks::{AtShare, NewEndpoint, Rotation},
};

/// How many attempts one endpoint and one organization may have in flight in one dispatcher.
#[derive(Debug, Clone, Copy)]
pub struct Shares {
    pub per_endpoint: u64,
    pub per_organization: u64,
}

/// The attempts a dispatcher has in flight, per endpoint and per organization.
#[derive(Debug, Default)]
pub struct InFlight {
    pub endpoints: std::collections::HashMap<Uuid, u64>,
    pub organizations: std::collections::HashMap<Uuid, u64>,
}

impl InFlight {
    pub fn add(&mut self, endpoint: Uuid, org: Uuid) {
        *self.endpoints.entry(endpoint).or_default() += 1;
        *self.organizations.entry(org).or_default() += 1;
    }

    pub fn remove(&mut self, endpoint: Uuid, org: Uuid) {
        for (map, key) in [
            (&mut self.endpoints, endpoint),
            (&mut self.organizations, org),
        ] {
            if let Some(n) = map.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&key);
                }
            }
        }
    }
}

/// The operator's rules for webhook endpoints.
#[derive(Debug, Clone)]
pub struct WebhookRules {
    /// The keys signing secrets are sealed under; without one, endpoints cannot be created.
    pub sealing: Option<Arc<SealingKeys>>,
    /// Whether loopback, private and link-local destinations are allowed (tests, private
    /// deployments).
    pub allow_private: bool,
    /// How long a rotated-out secret keeps signing beside the new one.
    pub secret_overlap: Duration,
}

impl Default for WebhookRules {
    fn default() -> Self {
        WebhookRules {
            sealing: None,
            allow_private: false,
            secret_overlap: crate::defaults::duration(crate::defaults::WEBHOOK_SECRET_OVERLAP),
        }
    }
}

/// A new endpoint as a client asks for it.
#[derive(Debug, Clone)]
pub struct CreateEndpoint {
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<WebhookEventType>,
}

/// Where a webhook may be sent: `Err` says why not, as a client is told it.
///
/// The URL is http or https with a host and a port other than 0; an address literal, or every
/// address a host name resolves to, must be one
/// [`crate::domain::webhooks::forbidden_destination`] allows, unless the operator allows private
/// destinations.
/// Why a webhook may not be sent to `ip`, if it may not: a special-purpose address
/// ([`forbidden_destination`]) or one of this host's own interface addresses (a service bound to
/// 0.0.0.0 answers there).
pub fn refused_destination(ip: std::net::IpAddr) -> Option<&'static str> {
    let own: Vec<std::net::IpAddr> = if_addrs::get_if_addrs()
        .map(|interfaces| interfaces.iter().map(|i| i.ip()).collect())
        .unwrap_or_default();
    refused_among(ip, &own)
}

/// [`refused_destination`] with the host's addresses given.
fn refused_among(ip: std::net::IpAddr, own: &[std::net::IpAddr]) -> Option<&'static str> {
    forbidden_destination(ip).or_else(|| {
        let canonical = ip.to_canonical();
        own.iter()
            .any(|a| a.to_canonical() == canonical)
            .then_some("an address of this server's own host")
    })
}

pub async fn check_destination(url: &str, allow_private: bool) -> Result<(), String> {
    let parsed =
        url::Url::parse(url).map_err(|_| "must be an absolute http or https URL".to_owned())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let host = match parsed.host() {
        Some(host) => host,
        None => return Err("must name a host".into()),
    };
    if parsed.port() == Some(0) {
        return Err("must not use port 0".into());
    }
    if allow_private {
        return Ok(());
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<std::net::IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![ip.into()],
        url::Host::Ipv6(ip) => vec![ip.into()],
        url::Host::Domain(name) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| "has a host name that does not resolve".to_owned())?
            .map(|a| a.ip())
            .collect(),
    };
    if addresses.is_empty() {
        return Err("has a host name that does not resolve".into());
    }
    for ip in addresses {
        if let Some(why) = refused_destination(ip) {
            return Err(format!("must not point to {why} ({ip})"));
        }
    }
    Ok(())
}

impl Services {
    fn sealing(&self) -> Result<&SealingKeys, Error> {
        self.settings
            .webhooks
            .sealing
            .as_deref()
            .ok_or(Error::WebhooksNotConfigured)
    }

    async fn destination(&self, url: &str) -> Result<(), Error> {
        check_destination(url, self.settings.webhooks.allow_private)
            .await
            .map_err(|why| Error::Validation(FieldErrors::single("url", &why)))
    }

    /// Registers an endpoint with a fresh secret, sealed at rest; the secret is returned this
    /// once. Under an `Idempotency-Key` the answer (secret included) is recorded with it.
    pub async fn create_webhook_endpoint(
        &self,
        caller: &Caller,
        new: CreateEndpoint,
        completion: Option<&Completion<CreatedEndpoint>>,
    ) -> Result<CreatedEndpoint, Error> {
        let sealing = self.sealing()?;
        self.destination(&new.url).await?;
        let secret = new_secret();
        let row = NewEndpoint {
            url: new.url,
            description: new.description,
            events: new.events,
            secret: sealing.seal(&secret),
        };
        let sealed = self.sealed_completion(completion);
        let limit = self.settings.limits.webhook_endpoints;
        self.tenant(caller)
            .insert_webhook_endpoint(row, secret, limit, sealed.as_ref())
            .await?
            .map_err(|at| Error::LimitReached { limit: at.0 })
    }

    pub async fn webhook_endpoints(&self, caller: &Caller) -> Result<Vec<WebhookEndpoint>, Error> {
        Ok(self.tenant(caller).webhook_endpoints().await?)
    }

    pub async fn webhook_endpoint(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<WebhookEndpoint, Error> {
        self.tenant(caller)
            .webhook_endpoint(id)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Changes an endpoint; a new URL is checked as at creation.
    pub async fn update_webhook_endpoint(
        &self,
        caller: &Caller,
        id: Uuid,
        changes: EndpointChanges,
    ) -> Result<WebhookEndpoint, Error> {
        self.webhook_endpoint(caller, id).await?;
        if let Some(url) = &changes.url {
            self.destination(url).await?;
        }
        self.tenant(caller)
            .update_webhook_endpoint(id, changes)
            .await?
            .ok_or(Error::NotFound)
    }

    pub async fn delete_webhook_endpoint(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<WebhookEndpoint, Error> {
        self.tenant(caller)
            .delete_webhook_endpoint(id)
            .await?
            .ok_or(Error::NotFound)
    }

    /// A new secret for the endpoint; the old one keeps signing beside it for the overlap.
    pub async fn rotate_webhook_secret(
        &self,
        caller: &Caller,
        id: Uuid,
        completion: Option<&Completion<CreatedEndpoint>>,
    ) -> Result<CreatedEndpoint, Error> {
        self.webhook_endpoint(caller, id).await?;
        let sealing = self.sealing()?;
        let secret = new_secret();
        let until = Timestamp::now().as_datetime()
            + chrono::Duration::from_std(self.settings.webhooks.secret_overlap)
                .unwrap_or(chrono::Duration::days(1));
        let rotation = Rotation {
            sealed: sealing.seal(&secret),
            secret,
            until,
            most_signing: MOST_ROTATED_SIGNING,
        };
        let sealed = self.sealed_completion(completion);
        self.tenant(caller)
            .rotate_webhook_secret(id, rotation, sealed.as_ref())
            .await?
            .ok_or(Error::NotFound)?
            .map_err(|at| Error::LimitReached { limit: at.0 })
    }

    /// An `Idempotency-Key`'s completion whose recorded answer — it holds a secret — is kept
    /// sealed too, and opened for a replay.
    fn sealed_completion(
        &self,
        completion: Option<&Completion<CreatedEndpoint>>,
    ) -> Option<Completion<CreatedEndpoint>> {
        completion.map(|c| {
            let (render, keys) = (c.render.clone(), self.settings.webhooks.sealing.clone());
            Completion {
                hold: c.hold.clone(),
                status: c.status,
                render: Arc::new(move |made: &CreatedEndpoint| {
                    let body = render(made);
                    match &keys {
                        Some(keys) => format!("{SEALED_PREFIX}{}", keys.seal(&body)),
                        None => body,
                    }
                }),
            }
        })
    }

    /// Deliveries to one endpoint, newest first.
    pub async fn webhook_deliveries(
        &self,
        caller: &Caller,
        endpoint_id: Uuid,
        limit: u64,
        before: Option<Uuid>,
    ) -> Result<Vec<WebhookDelivery>, Error> {
        self.webhook_endpoint(caller, endpoint_id).await?;
        Ok(self
            .tenant(caller)
            .webhook_deliveries(endpoint_id, limit, before)
            .await?)
    }

    /// Sends a `webhook.test` event (with `data`) to endpoint `id` alone; its delivery.
    pub async fn send_test_webhook(
        &self,
        caller: &Caller,
        id: Uuid,
        data: serde_json::Value,
    ) -> Result<WebhookDelivery, Error> {
        self.tenant(caller)
            .send_test_event(id, data)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Makes a delivery due now, with a fresh retry schedule.
    pub async fn retry_webhook_delivery(
        &self,
        caller: &Caller,
        endpoint_id: Uuid,
        id: Uuid,
    ) -> Result<WebhookDelivery, Error> {
        self.tenant(caller)
            .retry_webhook_delivery(endpoint_id, id)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Leases up to `limit` due deliveries (at most `per_endpoint` per endpoint, leaving out
    /// `busy` endpoints' share) until `until`, with their secrets opened.
    pub async fn claim_webhook_deliveries(
        &self,
        share: Shares,
        limit: u64,
        until: DateTime<Utc>,
        busy: &InFlight,
    ) -> Result<Vec<DueDelivery>, Error> {
        let now = Timestamp::now().as_datetime();
        let system = self.system();
        let full = AtShare {
            endpoints: busy
                .endpoints
                .iter()
                .filter(|(_, n)| **n >= share.per_endpoint)
                .map(|(id, _)| *id)
                .collect(),
            organizations: busy
                .organizations
                .iter()
                .filter(|(_, n)| **n >= share.per_organization)
                .map(|(id, _)| *id)
                .collect(),
        };
        let candidates = system
            .due_webhook_deliveries(now, share.per_endpoint, limit, &full)
            .await?;
        let mut taken = InFlight::default();
        let ids: Vec<Uuid> = candidates
            .into_iter()
            .filter(|(_, endpoint, org)| {
                let at_endpoint = busy.endpoints.get(endpoint).copied().unwrap_or(0)
                    + taken.endpoints.get(endpoint).copied().unwrap_or(0);
                let at_org = busy.organizations.get(org).copied().unwrap_or(0)
                    + taken.organizations.get(org).copied().unwrap_or(0);
                if at_endpoint >= share.per_endpoint || at_org >= share.per_organization {
                    return false;
                }
                taken.add(*endpoint, *org);
                true
            })
            .map(|(id, _, _)| id)
            .collect();
        let leased = system.lease_webhook_deliveries(&ids, now, until).await?;
        let Some(sealing) = self.settings.webhooks.sealing.as_deref() else {
            return Err(Error::WebhooksNotConfigured);
        };
        let mut due = Vec::with_capacity(leased.len());
        for l in leased {
            let opened = l
                .secrets
                .iter()
                .map(|s| sealing.open(s))
                .collect::<Result<Vec<_>, _>>();
            let (secrets, fault) = match opened {
                Ok(secrets) => (secrets, None),
                Err(e) => {
                    tracing::error!(endpoint = %l.endpoint_id, cause = %e, "a webhook secret cannot be opened");
                    (
                        Vec::new(),
                        Some(
                            "the endpoint's signing secret cannot be opened on this server"
                                .to_owned(),
                        ),
                    )
                }
            };
            due.push(DueDelivery {
                fault,
                id: l.id,
                endpoint_id: l.endpoint_id,
                org_id: l.org_id,
                url: l.url,
                secrets,
                event_id: l.event_id,
                payload: l.payload,
                attempts: l.attempts,
                schedule_base: l.schedule_base,
            });
        }
        Ok(due)
    }

    /// Completes when this process commits a webhook event (the dispatcher's wake-up; other
    /// processes' events are found by its poll).
    pub async fn webhook_event_committed(&self) {
        self.store.webhook_event_committed().await;
    }

    /// Records attempts' outcomes together.
    pub async fn record_webhook_outcomes(&self, outcomes: &[Outcome]) -> Result<(), Error> {
        Ok(self.system().record_webhook_outcomes(outcomes).await?)
    }

    /// Deletes finished events older than `before`.
    pub async fn purge_webhook_events(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<u64, Error> {
        Ok(self.system().purge_webhook_events(before, limit).await?)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::{refused_among, refused_destination};

    #[test]
    fn the_hosts_own_addresses_are_refused() {
        let own: Vec<IpAddr> = vec![
            "203.0.114.5".parse().unwrap(),
            "2a00:1450::5".parse().unwrap(),
        ];
        for ip in ["203.0.114.5", "::ffff:203.0.114.5", "2a00:1450::5"] {
            assert_eq!(
                refused_among(ip.parse().unwrap(), &own),
                Some("an address of this server's own host"),
                "{ip}"
            );
        }
        assert_eq!(refused_among("203.0.114.6".parse().unwrap(), &own), None);
        // Every address of this machine's interfaces is refused, whatever its kind.
        for interface in if_addrs::get_if_addrs().unwrap() {
            assert!(
                refused_destination(interface.ip()).is_some(),
                "{interface:?}"
            );
        }
    }
}
