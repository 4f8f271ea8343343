//! Message attributes and the status values a message moves through.

/// Declares a plain enum with its stored/wire names, `as_str` and `parse`.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use named_enum;

named_enum!(
    /// How a message travels: plain SMS, or MMS when it carries media.
    Channel { Sms => "sms", Mms => "mms" }
);

named_enum!(
    /// Send priority; `high` messages are handed to the carrier first.
    Priority { Default => "default", High => "high" }
);

named_enum!(
    /// Whether the organization sent the message or received it.
    Direction { Outbound => "outbound", Inbound => "inbound" }
);

named_enum!(
    /// Where a message is in its life: `queued → sending → sent → delivered | undelivered`, and
    /// `failed` from any state that is not terminal.
    MessageStatus {
        Queued => "queued",
        Sending => "sending",
        Sent => "sent",
        Delivered => "delivered",
        Undelivered => "undelivered",
        Failed => "failed",
        Received => "received",
    }
);

// The enum is declared by `named_enum!`, which has no room for `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for Priority {
    fn default() -> Self {
        Priority::Default
    }
}

impl MessageStatus {
    /// Terminal states never change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            MessageStatus::Delivered
                | MessageStatus::Undelivered
                | MessageStatus::Failed
                | MessageStatus::Received
        )
    }
}

/// The most media URLs one MMS may carry.
pub const MAX_MEDIA_URLS: usize = 10;
/// The most characters a tag may have.
pub const MAX_TAG_CHARS: usize = 256;
/// The most characters one media URL may have.
pub const MAX_MEDIA_URL_CHARS: usize = 2048;

/// The published pattern for media URLs: http(s), a host, and no spaces or control characters.
pub const MEDIA_URL_PATTERN: &str = r"^https?://[^\x00-\x20/?#]+[^\x00-\x20\x7f]*$";

/// A media URL: [`MEDIA_URL_PATTERN`] (the same rule the spec publishes) and at most
/// [`MAX_MEDIA_URL_CHARS`] characters.
pub fn is_media_url(s: &str) -> bool {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let pattern =
        PATTERN.get_or_init(|| regex::Regex::new(MEDIA_URL_PATTERN).expect("a valid pattern"));
    s.chars().count() <= MAX_MEDIA_URL_CHARS && pattern.is_match(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in MessageStatus::ALL {
            assert_eq!(MessageStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(Priority::parse("urgent"), None);
    }

    #[test]
    fn media_urls_must_be_http_or_https() {
        assert!(is_media_url("https://example.com/cat.jpg"));
        assert!(is_media_url("http://example.com:8080/a?b=c"));
        assert!(!is_media_url("ftp://example.com/cat.jpg"));
        assert!(!is_media_url("example.com/cat.jpg"));
        assert!(!is_media_url("https://"));
        assert!(!is_media_url(""));
        assert!(!is_media_url("https://example.com/a b.png"));
        assert!(!is_media_url("https://example.com/a\0.png"));
    }

    #[test]
    fn media_url_check_agrees_with_the_published_pattern() {
        let re = regex::Regex::new(MEDIA_URL_PATTERN).unwrap();
        for url in [
            "https://example.com/cat.jpg",
            "http://a.b/c?d=e#f",
            "ftp://example.com/x",
            "https://",
            "https://a b/c",
            "https://example.com/a\u{7f}",
            "https://example.com/\0",
            "http:///path",
            "https://ex.com/ü",
        ] {
            assert_eq!(re.is_match(url), is_media_url(url), "{url:?}");
        }
    }
}
