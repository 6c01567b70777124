//! A message's own attributes ("message attributes", set by its sender), as the engine reads
//! them: the string-valued ones (data types `String` and `Number`, and their custom forms such
//! as `String.id`), borrowed from the payload, kept in name order.
//!
//! Binary attributes (`binaryValue`) and SQS's unimplemented list values are not read: a
//! record does not offer them, and a dead letter does not carry them.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::json::{Borrowed, option_cow};

/// One string-valued message attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAttribute<'a> {
    /// The attribute's name.
    pub name: Cow<'a, str>,
    /// Its data type: `String`, `Number`, or a custom form such as `String.id`.
    pub data_type: Cow<'a, str>,
    /// Its value.
    pub value: Cow<'a, str>,
}

impl<'a> MessageAttribute<'a> {
    /// An attribute of data type `String`.
    pub fn string(name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) -> Self {
        Self { name: name.into(), data_type: Cow::Borrowed("String"), value: value.into() }
    }
}

/// A message's string-valued attributes, in name order. Empty (and unallocated) for a message
/// without any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageAttributes<'a>(Vec<MessageAttribute<'a>>);

impl<'a> MessageAttributes<'a> {
    /// No attributes.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// The value of the attribute `name`, if the message has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        let i = self.0.binary_search_by(|a| a.name.as_ref().cmp(name)).ok()?;
        Some(&self.0[i].value)
    }

    /// The attributes, in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, MessageAttribute<'a>> {
        self.0.iter()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The attributes of a message received with `ReceiveMessage`, borrowed from it.
    #[cfg(feature = "sdk")]
    pub(crate) fn of_message(message: &'a aws_sdk_sqs::types::Message) -> Self {
        let Some(attributes) = message.message_attributes() else {
            return Self::new();
        };
        attributes
            .iter()
            .filter_map(|(name, value)| {
                Some(MessageAttribute {
                    name: Cow::Borrowed(name),
                    data_type: Cow::Borrowed(value.data_type()),
                    value: Cow::Borrowed(value.string_value()?),
                })
            })
            .collect()
    }
}

impl<'a> FromIterator<MessageAttribute<'a>> for MessageAttributes<'a> {
    fn from_iter<I: IntoIterator<Item = MessageAttribute<'a>>>(attributes: I) -> Self {
        let mut attributes: Vec<_> = attributes.into_iter().collect();
        attributes.sort_by(|a, b| a.name.cmp(&b.name));
        Self(attributes)
    }
}

impl<'s, 'a> IntoIterator for &'s MessageAttributes<'a> {
    type Item = &'s MessageAttribute<'a>;
    type IntoIter = std::slice::Iter<'s, MessageAttribute<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// One value of Lambda's `messageAttributes` map; the other fields are skipped unread.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Value<'a> {
    #[serde(borrow, default, deserialize_with = "option_cow")]
    string_value: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "option_cow")]
    data_type: Option<Cow<'a, str>>,
}

/// Lambda's shape: `{"name": {"stringValue": "…", "dataType": "String", …}, …}`, or null.
impl<'de: 'a, 'a> Deserialize<'de> for MessageAttributes<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(AttributesVisitor(std::marker::PhantomData))
    }
}

struct AttributesVisitor<'a>(std::marker::PhantomData<MessageAttributes<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for AttributesVisitor<'a> {
    type Value = MessageAttributes<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map of message attributes")
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(MessageAttributes::new())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(MessageAttributes::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut attributes = Vec::new();
        while let Some(Borrowed(name)) = map.next_key()? {
            let value: Value<'de> = map.next_value()?;
            if let Some(string_value) = value.string_value {
                let data_type = value.data_type.unwrap_or(Cow::Borrowed("String"));
                attributes.push(MessageAttribute { name, data_type, value: string_value });
            }
        }
        Ok(attributes.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> MessageAttributes<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn string_and_number_attributes_are_read_in_name_order_borrowed_and_binary_ones_skipped() {
        let json = r#"{"owner":{"stringValue":"alice","stringListValues":[],"binaryListValues":[],"dataType":"String"},
            "blob":{"binaryValue":"AAE=","dataType":"Binary"},
            "attempt":{"stringValue":"3","dataType":"Number"},
            "escaped":{"stringValue":"a\"b","dataType":"String.quoted"}}"#;
        let attributes = parse(json);
        let names: Vec<&str> = attributes.iter().map(|a| a.name.as_ref()).collect();
        assert_eq!(names, ["attempt", "escaped", "owner"], "name order; the binary one skipped");
        assert_eq!(attributes.get("owner"), Some("alice"));
        assert_eq!(attributes.get("escaped"), Some("a\"b"));
        assert_eq!(attributes.get("blob"), None);
        assert_eq!(attributes.get("nobody"), None);
        let owner = attributes.iter().find(|a| a.name == "owner").unwrap();
        assert!(matches!(owner.value, Cow::Borrowed(_)), "borrowed from the payload");
        assert_eq!(attributes.iter().find(|a| a.name == "attempt").unwrap().data_type, "Number");
    }

    #[test]
    fn none_null_or_empty_is_empty_without_an_allocation() {
        for json in ["{}", "null"] {
            let attributes = parse(json);
            assert!(attributes.is_empty());
            assert_eq!(attributes.0.capacity(), 0, "{json}: no allocation");
        }
    }
}
