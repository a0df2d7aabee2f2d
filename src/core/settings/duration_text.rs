//! Durations written as text: "30s", "5m", "1h 30m", "250ms".

use serde::{de::Error, Deserialize, Deserializer, Serializer};
use std::time::Duration;

pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&humantime::format_duration(*value).to_string())
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    /// Text such as "30s", or a bare number of seconds.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Seconds(u64),
    }
    let text = match Written::deserialize(deserializer)
        .map_err(|_| D::Error::custom("expected a duration such as \"30s\", \"5m\" or \"1h 30m\", or whole seconds"))?
    {
        Written::Seconds(secs) => return Ok(Duration::from_secs(secs)),
        Written::Text(text) => text,
    };
    parse(&text).map_err(D::Error::custom)
}

/// A duration written as text, or whole seconds as text (an environment
/// override or a command-line flag is always text).
pub fn parse(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.trim().parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. \"30s\", \"5m\" or \"1h 30m\""))
}

/// The same for optional durations (absent stays `None`).
pub mod option {
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => super::serialize(d, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        super::deserialize(deserializer).map(Some)
    }
}
