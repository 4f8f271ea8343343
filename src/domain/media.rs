//! MMS media: what a media URL must be when a send is accepted, and what a media item must be
//! when the worker fetches it before submission.

/// The Content-Types an MMS may carry (the essence, without parameters).
pub const ALLOWED_TYPES: [&str; 10] = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "video/mp4",
    "video/3gpp",
    "audio/mpeg",
    "audio/amr",
    "text/vcard",
    "text/calendar",
    "application/pdf",
];

/// The essence of a Content-Type (`image/png; q=1` → `image/png`), lower case.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether an MMS may carry a media item of `content_type`.
pub fn is_allowed_type(content_type: &str) -> bool {
    ALLOWED_TYPES.contains(&essence(content_type).as_str())
}

/// A media item of an inbound MMS, as the MMS centre delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMedia {
    /// The essence of its Content-Type.
    pub content_type: String,
    pub content_id: Option<String>,
    pub bytes: Vec<u8>,
}

/// Where an inbound MMS's media item `index` (1-based) is served.
pub fn inbound_media_path(message_id: uuid::Uuid, index: usize) -> String {
    format!("/v1/messages/{message_id}/media/{index}")
}

/// The usual file extension of an allowed type (`bin` for another).
pub fn extension(content_type: &str) -> &'static str {
    match essence(content_type).as_str() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "audio/mpeg" => "mp3",
        "audio/amr" => "amr",
        "text/vcard" => "vcf",
        "text/calendar" => "ics",
        "application/pdf" => "pdf",
        _ => "bin",
    }
}

/// Whether an image of `content_type` can be scaled down and re-encoded to fit the size cap.
pub fn is_scalable_image(content_type: &str) -> bool {
    matches!(
        essence(content_type).as_str(),
        "image/jpeg" | "image/png" | "image/gif"
    )
}

/// Why `url`'s scheme or form is refused (`None`: it may be fetched, its destination aside):
/// https, or plain http where the deployment allows it; no credentials.
pub fn url_refusal(url: &url::Url, allow_http: bool) -> Option<&'static str> {
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Some("must be an https URL (this deployment does not fetch plain http)"),
        _ => return Some("must be an https URL"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some("must not carry credentials");
    }
    if url.host().is_none() {
        return Some("must name a host");
    }
    if url.port() == Some(0) {
        return Some("must not use port 0");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_reads_the_essence() {
        assert!(is_allowed_type("image/PNG; charset=binary"));
        assert!(is_allowed_type("application/pdf"));
        assert!(!is_allowed_type("text/html"));
        assert!(!is_allowed_type("image/svg+xml"));
        assert!(!is_allowed_type(""));
        assert!(is_scalable_image("image/jpeg"));
        assert!(!is_scalable_image("video/mp4"));
    }

    #[test]
    fn https_unless_http_is_allowed() {
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert_eq!(
            url_refusal(&url("https://media.example.com/a.png"), false),
            None
        );
        assert!(url_refusal(&url("http://media.example.com/a.png"), false)
            .unwrap()
            .contains("https"));
        assert_eq!(
            url_refusal(&url("http://media.example.com/a.png"), true),
            None
        );
        assert!(url_refusal(&url("ftp://media.example.com/a.png"), true).is_some());
        assert!(url_refusal(&url("https://u:p@media.example.com/a.png"), false).is_some());
        assert!(url_refusal(&url("https://media.example.com:0/a.png"), false).is_some());
    }
}
