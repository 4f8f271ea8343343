//! Fetching an MMS's media before submission, held to the deployment's [`MediaRules`]: through
//! the resolver that refuses forbidden destinations (each redirect's target checked again, at
//! most five), within the fetch timeout, each item's Content-Type on the allow-list, and the
//! total within the size cap — read no further than the cap allows. A failure is the
//! message's `MEDIA_UNAVAILABLE`, `MEDIA_TYPE_UNSUPPORTED` or `MEDIA_TOO_LARGE`.

use std::sync::Arc;

use super::webhooks::{literal_forbidden, GuardedResolver};
use crate::{
    domain::{media, transition::MessageErrorCode},
    service::MediaRules,
};

/// One media item as fetched.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub url: String,
    /// The essence of its Content-Type.
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Why the media could not be made an MMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFailure {
    pub code: MessageErrorCode,
    pub text: String,
}

impl MediaFailure {
    fn unavailable(item: usize, why: impl std::fmt::Display) -> MediaFailure {
        MediaFailure {
            code: MessageErrorCode::MediaUnavailable,
            text: format!("media item {item} could not be fetched: {why}"),
        }
    }
}

/// Fetches media under the deployment's rules.
#[derive(Clone)]
pub struct MediaFetcher {
    client: reqwest::Client,
    rules: MediaRules,
}

impl MediaFetcher {
    pub fn new(rules: MediaRules) -> MediaFetcher {
        let allow_http = rules.allow_http;
        let allow_private = rules.allow_private;
        // Every hop is checked as the first was: scheme, credentials, an address literal.
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                return attempt.error("more than five redirects");
            }
            let target = attempt.url().clone();
            if let Some(why) = media::url_refusal(&target, allow_http) {
                return attempt.error(format!("a redirect to {target} {why}"));
            }
            if !allow_private {
                if let Some(why) = literal_forbidden(target.as_str()) {
                    return attempt.error(format!("a redirect to {target}: {why}"));
                }
            }
            attempt.follow()
        });
        let client = reqwest::Client::builder()
            .redirect(redirects)
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .user_agent(concat!("AgentMessage-Media/", env!("CARGO_PKG_VERSION")))
            .timeout(rules.fetch_timeout)
            .build()
            .expect("the media client's settings are valid");
        MediaFetcher { client, rules }
    }

    /// Fetches every item in order; the first failure ends it.
    pub async fn fetch_all(&self, urls: &[String]) -> Result<Vec<Fetched>, MediaFailure> {
        let mut fetched = Vec::with_capacity(urls.len());
        let mut total: u64 = 0;
        for (i, url) in urls.iter().enumerate() {
            let room = self.rules.max_bytes.saturating_sub(total);
            let item = self.fetch(i + 1, url, room).await?;
            total += item.bytes.len() as u64;
            fetched.push(item);
        }
        Ok(fetched)
    }

    /// One item, read no further than `room` bytes.
    async fn fetch(&self, item: usize, url: &str, room: u64) -> Result<Fetched, MediaFailure> {
        let parsed = url::Url::parse(url).map_err(|e| MediaFailure::unavailable(item, e))?;
        if let Some(why) = media::url_refusal(&parsed, self.rules.allow_http) {
            return Err(MediaFailure::unavailable(item, format!("the URL {why}")));
        }
        if !self.rules.allow_private {
            if let Some(why) = literal_forbidden(url) {
                return Err(MediaFailure::unavailable(item, why));
            }
        }
        let mut response = self
            .client
            .get(parsed)
            .send()
            .await
            .map_err(|e| MediaFailure::unavailable(item, describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(MediaFailure::unavailable(
                item,
                format!("the server answered {}", status.as_u16()),
            ));
        }
        let content_type = media::essence(
            response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
        );
        if !media::is_allowed_type(&content_type) {
            let shown = if content_type.is_empty() {
                "none".to_owned()
            } else {
                content_type
            };
            return Err(MediaFailure {
                code: MessageErrorCode::MediaTypeUnsupported,
                text: format!(
                    "media item {item} is of type {shown}, which an MMS cannot carry (allowed: {})",
                    media::ALLOWED_TYPES.join(", ")
                ),
            });
        }
        let too_large = || {
            MediaFailure {
            code: MessageErrorCode::MediaTooLarge,
            text: format!(
                "the media add up to more than this deployment's cap of {} bytes (media item {item} passes it)",
                self.rules.max_bytes
            ),
        }
        };
        if response.content_length().is_some_and(|n| n > room) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| MediaFailure::unavailable(item, describe(&e)))?
        {
            if bytes.len() as u64 + chunk.len() as u64 > room {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            url: url.to_owned(),
            content_type,
            bytes,
        })
    }
}

/// A fetch error as a client reads it: what failed, with its innermost cause.
fn describe(err: &reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "no answer within the fetch timeout"
    } else if err.is_redirect() {
        "a redirect was refused"
    } else if err.is_connect() {
        "no connection"
    } else {
        "the request failed"
    };
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(err);
    let mut last = None;
    while let Some(c) = cause {
        last = Some(c.to_string());
        cause = c.source();
    }
    match last {
        Some(inner) => format!("{what} ({inner})"),
        None => what.to_owned(),
    }
}
