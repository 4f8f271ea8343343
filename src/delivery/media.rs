//! Fetching an MMS's media before submission, held to the deployment's [`MediaRules`]: through
//! the resolver that refuses forbidden destinations (each redirect's target checked again, at
//! most five), within the fetch timeout, each item's Content-Type on the allow-list, and the
//! total within the size cap — read no further than the cap allows. An image (JPEG, PNG, GIF)
//! that does not fit is read up to [`IMAGE_READ_FACTOR`] times the cap and scaled down and
//! re-encoded as JPEG (the `image` crate) until the media fit, each conversion noted for the
//! message's events. A failure is the message's `MEDIA_UNAVAILABLE`, `MEDIA_TYPE_UNSUPPORTED`
//! or `MEDIA_TOO_LARGE`.

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

/// How many times the size cap an image may be read before it is scaled down to fit.
pub const IMAGE_READ_FACTOR: u64 = 8;

/// An MMS's media as they will be submitted, and what was converted to get there.
#[derive(Debug, Clone)]
pub struct FetchedMedia {
    pub items: Vec<Fetched>,
    /// One line per image scaled down and re-encoded (for the message's events).
    pub conversions: Vec<String>,
}

impl FetchedMedia {
    pub fn total(&self) -> u64 {
        self.items.iter().map(|i| i.bytes.len() as u64).sum()
    }
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

    /// Fetches every item in order (the first failure ends it), all within the fetch timeout —
    /// a worker's batch waits for its slowest message, so one message's media hold it no longer
    /// than that — then scales images down until the media fit the cap (off the async threads).
    pub async fn fetch_all(&self, urls: &[String]) -> Result<FetchedMedia, MediaFailure> {
        let timeout = self.rules.fetch_timeout;
        let fetched = tokio::time::timeout(timeout, self.fetch_each(urls))
            .await
            .map_err(|_| MediaFailure {
                code: MessageErrorCode::MediaUnavailable,
                text: format!(
                    "the media could not all be fetched within the fetch timeout ({})",
                    humantime::format_duration(timeout)
                ),
            })??;
        let cap = self.rules.max_bytes;
        tokio::task::spawn_blocking(move || {
            let mut fetched = fetched;
            fit(&mut fetched, cap).map(|()| fetched)
        })
        .await
        .map_err(|e| MediaFailure {
            code: MessageErrorCode::MediaTooLarge,
            text: format!("the media could not be scaled to fit ({e})"),
        })?
    }

    /// The media of `submission` as a carrier submits them: fetched and checked, each
    /// conversion recorded on the message as an event; a failure is the part's
    /// [`SubmitError::Media`](super::SubmitError::Media) (nothing was written to the carrier).
    pub async fn prepare(
        &self,
        services: &crate::service::Services,
        submission: &super::Submission,
    ) -> Result<Vec<Fetched>, super::SubmitError> {
        if submission.media_urls.is_empty() {
            return Ok(Vec::new());
        }
        let fetched = self
            .fetch_all(&submission.media_urls)
            .await
            .map_err(|failure| super::SubmitError::Media {
                code: failure.code,
                message: failure.text,
            })?;
        for note in fetched.conversions {
            let recorded = services
                .record_media_conversion(submission.message_id, note)
                .await;
            if let Err(err) = recorded {
                tracing::warn!(%err, message = %submission.message_id, "a media conversion was not recorded");
            }
        }
        Ok(fetched.items)
    }

    async fn fetch_each(&self, urls: &[String]) -> Result<FetchedMedia, MediaFailure> {
        let cap = self.rules.max_bytes;
        let mut items = Vec::with_capacity(urls.len());
        let mut others: u64 = 0;
        for (i, url) in urls.iter().enumerate() {
            // What is not an image must fit beside what came before; an image may be scaled.
            let room = cap.saturating_sub(others);
            let image_room = cap.saturating_mul(IMAGE_READ_FACTOR);
            let item = self.fetch(i + 1, url, room, image_room).await?;
            if !media::is_scalable_image(&item.content_type) {
                others += item.bytes.len() as u64;
            }
            items.push(item);
        }
        Ok(FetchedMedia {
            items,
            conversions: vec![],
        })
    }

    /// One item, read no further than `room` bytes (`image_room` for an image that can be
    /// scaled down).
    async fn fetch(
        &self,
        item: usize,
        url: &str,
        room: u64,
        image_room: u64,
    ) -> Result<Fetched, MediaFailure> {
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
        let room = if media::is_scalable_image(&content_type) {
            image_room
        } else {
            room
        };
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

/// Scales the largest images down, one step at a time (three quarters of the width and height,
/// JPEG at quality 75), until the media add up to no more than `cap`; `MEDIA_TOO_LARGE` when
/// they cannot (what is not an image is over the cap alone, or an image cannot be read).
fn fit(media: &mut FetchedMedia, cap: u64) -> Result<(), MediaFailure> {
    let too_large = |why: String| MediaFailure {
        code: MessageErrorCode::MediaTooLarge,
        text: format!("the media add up to more than this deployment's cap of {cap} bytes{why}"),
    };
    if media.total() <= cap {
        return Ok(());
    }
    let mut order: Vec<usize> = (0..media.items.len())
        .filter(|i| media::is_scalable_image(&media.items[*i].content_type))
        .collect();
    order.sort_by_key(|i| std::cmp::Reverse(media.items[*i].bytes.len()));
    for index in order {
        let item = &media.items[index];
        let before = (item.content_type.clone(), item.bytes.len());
        let decoded = image::load_from_memory(&item.bytes).map_err(|e| {
            too_large(format!(
                ", and media item {} could not be read as an image to scale it down ({e})",
                index + 1
            ))
        })?;
        let others = media.total() - item.bytes.len() as u64;
        let (mut width, mut height) = (decoded.width(), decoded.height());
        let mut encoded;
        loop {
            let scaled = decoded.resize(
                width.max(1),
                height.max(1),
                image::imageops::FilterType::Triangle,
            );
            encoded = Vec::new();
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut encoded, 75);
            scaled.to_rgb8().write_with_encoder(encoder).map_err(|e| {
                too_large(format!(
                    ", and media item {} could not be re-encoded ({e})",
                    index + 1
                ))
            })?;
            if others + encoded.len() as u64 <= cap || width <= 16 || height <= 16 {
                break;
            }
            width = width * 3 / 4;
            height = height * 3 / 4;
        }
        let item = &mut media.items[index];
        item.content_type = "image/jpeg".into();
        item.bytes = encoded;
        media.conversions.push(format!(
            "media item {}: {} of {} bytes scaled to {}x{} and re-encoded as image/jpeg of {} bytes to fit the cap of {cap} bytes",
            index + 1,
            before.0,
            before.1,
            width.max(1),
            height.max(1),
            item.bytes.len()
        ));
        if media.total() <= cap {
            return Ok(());
        }
    }
    Err(too_large(String::new()))
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
