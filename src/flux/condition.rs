use std::fmt;

use jiff::Timestamp;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// Longest condition message kept, in bytes; only the first line is kept at all.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Condition types the exporter reads; other conditions are dropped while decoding.
const TRACKED_TYPES: [&str; 6] = [
    "Ready",
    "Reconciling",
    "Stalled",
    "Released",
    "TestSuccess",
    "Remediated",
];

/// `status` of a Kubernetes condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl<'de> Deserialize<'de> for ConditionStatus {
    /// Any value other than `True`/`False` means the controller does not know: `Unknown`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(match text.as_ref() {
            "True" => ConditionStatus::True,
            "False" => ConditionStatus::False,
            _ => ConditionStatus::Unknown,
        })
    }
}

/// One status condition, with its message cut to its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub type_: String,
    pub status: ConditionStatus,
    pub reason: String,
    /// First line of the message, at most [`MAX_MESSAGE_BYTES`] bytes.
    pub message: String,
    pub last_transition_time: Option<Timestamp>,
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// Builds a condition (used by tests and fixtures).
    pub fn new(type_: &str, status: ConditionStatus, reason: &str, message: &str) -> Self {
        Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: first_line(message),
            last_transition_time: None,
            observed_generation: None,
        }
    }
}

/// The first non-empty line of `message`, trimmed and cut to [`MAX_MESSAGE_BYTES`] on a
/// character boundary.
pub fn first_line(message: &str) -> String {
    let line = message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let line = super::scrub::strip_credentials(line);
    let mut end = line.len().min(MAX_MESSAGE_BYTES);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_string()
}

/// The tracked conditions of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions(pub Vec<Condition>);

impl Conditions {
    /// The condition of the given type, if the object has it.
    pub fn get(&self, type_: &str) -> Option<&Condition> {
        self.0.iter().find(|c| c.type_ == type_)
    }
}

impl<'de> Deserialize<'de> for Conditions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConditionsVisitor;
        impl<'de> Visitor<'de> for ConditionsVisitor {
            type Value = Conditions;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of conditions")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Conditions, E> {
                Ok(Conditions::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Conditions, E> {
                Ok(Conditions::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Conditions, A::Error> {
                let mut kept = Vec::new();
                while let Some(item) = seq.next_element::<MaybeCondition>()? {
                    if let MaybeCondition::Tracked(c) = item {
                        kept.push(c);
                    }
                }
                // A growing Vec holds room for four; most objects keep one condition, and a
                // snapshot holds tens of thousands of these lists.
                kept.shrink_to_fit();
                Ok(Conditions(kept))
            }
        }
        deserializer.deserialize_any(ConditionsVisitor)
    }
}

/// A condition element, decoded fully only when its type is tracked.
enum MaybeCondition {
    Tracked(Condition),
    Ignored,
}

impl<'de> Deserialize<'de> for MaybeCondition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConditionVisitor;
        impl<'de> Visitor<'de> for ConditionVisitor {
            type Value = MaybeCondition;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a condition object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeCondition, A::Error> {
                let mut type_: Option<String> = None;
                let mut status = None;
                let mut reason = None;
                let mut message = None;
                let mut last_transition_time = None;
                let mut observed_generation = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "type" => type_ = Some(map.next_value()?),
                        "status" => status = Some(map.next_value::<ConditionStatus>()?),
                        "reason" => reason = Some(map.next_value::<String>()?),
                        "message" => {
                            let full = map.next_value::<std::borrow::Cow<'de, str>>()?;
                            message = Some(first_line(&full));
                        }
                        "lastTransitionTime" => {
                            last_transition_time = map.next_value::<Option<Timestamp>>()?
                        }
                        "observedGeneration" => {
                            observed_generation = map.next_value::<Option<i64>>()?
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let type_ = type_.ok_or_else(|| de::Error::missing_field("type"))?;
                if !TRACKED_TYPES.contains(&type_.as_str()) {
                    return Ok(MaybeCondition::Ignored);
                }
                Ok(MaybeCondition::Tracked(Condition {
                    type_,
                    status: status.ok_or_else(|| de::Error::missing_field("status"))?,
                    reason: reason.unwrap_or_default(),
                    message: message.unwrap_or_default(),
                    last_transition_time,
                    observed_generation,
                }))
            }
        }
        deserializer.deserialize_map(ConditionVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tracked_condition_types_are_kept_and_messages_cut_to_their_first_line() {
        let json = r#"[
            {"type":"Ready","status":"False","reason":"HealthCheckFailed",
             "message":"health check failed\ndetails follow","lastTransitionTime":"2026-11-20T10:00:00Z",
             "observedGeneration":3},
            {"type":"Healthy","status":"True","reason":"Succeeded","message":"x"},
            {"type":"Reconciling","status":"Maybe","reason":"Progressing","message":""}
        ]"#;
        let conditions: Conditions = serde_json::from_str(json).unwrap();
        assert_eq!(conditions.0.len(), 2);
        let ready = conditions.get("Ready").unwrap();
        assert_eq!(ready.message, "health check failed");
        assert_eq!(ready.observed_generation, Some(3));
        assert_eq!(
            conditions.get("Reconciling").unwrap().status,
            ConditionStatus::Unknown
        );
        assert!(conditions.get("Healthy").is_none());
    }

    #[test]
    fn an_absurdly_long_message_is_cut_on_a_character_boundary() {
        let long = "é".repeat(5000);
        let cut = first_line(&long);
        assert!(cut.len() <= MAX_MESSAGE_BYTES);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_BYTES / 2);
    }

    #[test]
    fn credentials_in_quoted_urls_are_removed() {
        assert_eq!(
            first_line(
                "failed to checkout 'https://user:ghp_token@github.com/acme/app.git' and ssh://git@host:22/x"
            ),
            "failed to checkout 'https://github.com/acme/app.git' and ssh://host:22/x"
        );
    }

    #[test]
    fn null_conditions_decode_as_none() {
        let conditions: Conditions = serde_json::from_str("null").unwrap();
        assert!(conditions.0.is_empty());
    }
}
