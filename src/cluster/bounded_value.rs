//! A JSON value deserialized under a size budget, so that YAML aliases cannot make a small
//! file expand into gigabytes: every scalar, key and element charges what it costs, and the
//! parse fails once the budget is spent. Pure.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// What each value costs beyond its text: about the size of a small JSON node.
const NODE_COST: usize = 16;

thread_local! {
    /// Bytes left to the value being deserialized on this thread.
    static LEFT: Cell<usize> = const { Cell::new(usize::MAX) };
    /// The budget the current parse started with, for the error message.
    static LIMIT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// A [`Value`] deserialized within the budget set by [`with_budget`].
pub struct BoundedValue(pub Value);

/// Runs `parse` with `budget` bytes for the values it deserializes as [`BoundedValue`].
pub fn with_budget<T>(budget: usize, parse: impl FnOnce() -> T) -> T {
    let saved = (LEFT.with(Cell::get), LIMIT.with(Cell::get));
    LEFT.with(|l| l.set(budget));
    LIMIT.with(|l| l.set(budget));
    let result = parse();
    LEFT.with(|l| l.set(saved.0));
    LIMIT.with(|l| l.set(saved.1));
    result
}

/// How the error text of a value outgrowing its budget starts.
pub const TOO_LARGE: &str = "the content expands to more than";

/// The error text when a value outgrows its budget.
pub fn too_large_message(limit: usize) -> String {
    format!("{TOO_LARGE} {} MiB", limit / (1024 * 1024))
}

fn charge<E: de::Error>(cost: usize) -> Result<(), E> {
    let left = LEFT.with(Cell::get);
    match left.checked_sub(cost) {
        Some(rest) => {
            LEFT.with(|l| l.set(rest));
            Ok(())
        }
        None => Err(E::custom(too_large_message(LIMIT.with(Cell::get)))),
    }
}

impl<'de> Deserialize<'de> for BoundedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(BoundedVisitor)
            .map(BoundedValue)
    }
}

struct BoundedVisitor;

impl<'de> Visitor<'de> for BoundedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        charge(NODE_COST)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        charge(NODE_COST)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        charge(NODE_COST)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        charge(NODE_COST)?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        // Charged before the copy is made.
        charge(NODE_COST.saturating_add(v.len()))?;
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        charge(NODE_COST.saturating_add(v.len()))?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        charge(NODE_COST)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        BoundedValue::deserialize(deserializer).map(|v| v.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        charge(NODE_COST)?;
        let mut items = Vec::new();
        while let Some(BoundedValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        charge(NODE_COST)?;
        let mut object = Map::new();
        while let Some(BoundedValue(key)) = map.next_key()? {
            let key = match key {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let BoundedValue(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_within_its_budget_is_the_plain_json_value() {
        let parsed = with_budget(10_000, || {
            serde_json::from_str::<BoundedValue>(r#"{"a": [1, "two", true, null, 2.5]}"#)
        })
        .unwrap();
        assert_eq!(
            parsed.0,
            serde_json::json!({"a": [1, "two", true, null, 2.5]})
        );
    }

    #[test]
    fn a_value_over_its_budget_fails_with_the_reason() {
        let big = format!("[\"{}\", \"{}\"]", "x".repeat(3 << 20), "y".repeat(3 << 20));
        let err = with_budget(4 << 20, || serde_json::from_str::<BoundedValue>(&big))
            .err()
            .unwrap();
        assert!(
            err.to_string().starts_with(&too_large_message(4 << 20)),
            "{err}"
        );
    }
}
