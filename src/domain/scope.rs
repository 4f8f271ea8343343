//! API key scopes.

use std::{collections::BTreeSet, fmt, str::FromStr};

/// One permission an API key can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    MessagesSend,
    MessagesRead,
    ConsentsRead,
    ConsentsWrite,
    LookupsRead,
    LookupsWrite,
    NumbersRead,
    ApiKeysRead,
    ApiKeysWrite,
    WebhooksRead,
    WebhooksWrite,
}

impl Scope {
    pub const ALL: [Scope; 11] = [
        Scope::MessagesSend,
        Scope::MessagesRead,
        Scope::ConsentsRead,
        Scope::ConsentsWrite,
        Scope::LookupsRead,
        Scope::LookupsWrite,
        Scope::NumbersRead,
        Scope::ApiKeysRead,
        Scope::ApiKeysWrite,
        Scope::WebhooksRead,
        Scope::WebhooksWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::MessagesSend => "messages:send",
            Scope::MessagesRead => "messages:read",
            Scope::ConsentsRead => "consents:read",
            Scope::ConsentsWrite => "consents:write",
            Scope::LookupsRead => "lookups:read",
            Scope::LookupsWrite => "lookups:write",
            Scope::NumbersRead => "numbers:read",
            Scope::ApiKeysRead => "api_keys:read",
            Scope::ApiKeysWrite => "api_keys:write",
            Scope::WebhooksRead => "webhooks:read",
            Scope::WebhooksWrite => "webhooks:write",
        }
    }
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        s.parse().ok()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name was not one of [`Scope::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}; the scopes are {known}", known = Scope::names())]
pub struct UnknownScope(pub String);

impl Scope {
    /// Every scope's name, comma-separated.
    pub fn names() -> String {
        Scope::ALL.map(Scope::as_str).join(", ")
    }
}

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

/// The scopes granted to one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    pub fn all() -> ScopeSet {
        ScopeSet(Scope::ALL.into_iter().collect())
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses names separated by commas or whitespace (`messages:send,messages:read`).
    pub fn parse_list(s: &str) -> Result<ScopeSet, UnknownScope> {
        s.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|part| !part.is_empty())
            .map(Scope::from_str)
            .collect()
    }

    /// The stored form: names separated by single spaces.
    pub fn to_stored(&self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(" ")
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        ScopeSet(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
        }
        let all = ScopeSet::all();
        assert_eq!(ScopeSet::parse_list(&all.to_stored()).unwrap(), all);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            ScopeSet::parse_list("messages:send,messages:delete"),
            Err(UnknownScope("messages:delete".into()))
        );
    }
}
