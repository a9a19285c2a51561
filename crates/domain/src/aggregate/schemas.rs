//! What every aggregate's events share on the wire when they are a serde
//! enum tagged `{"event_type": ..., "data": {...}}`: a table of event types
//! with the schema version this code writes, and decoding that refuses what
//! only newer code can read and upcasts what older code wrote. An event
//! enum implements [`TaggedEvent`] and gets [`EventPayload`] from it.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{DecodeError, EventPayload};

/// An event enum tagged `{"event_type": <variant>, "data": {...}}`, with its
/// table of schema versions: all an entity writes to get [`EventPayload`].
pub trait TaggedEvent: Serialize + DeserializeOwned {
    /// Each event type this code reads and writes, with the schema version
    /// it writes. A type missing here is unknown; a version above it is from
    /// newer code.
    const SCHEMAS: Schemas;

    /// This event's type name: its variant, the wire's `event_type`.
    fn name(&self) -> &'static str;

    /// One step up from an older schema version of `event_type`; an event
    /// type that has had one version only needs none.
    fn upcast(event_type: &str, version: u32, data: Value) -> Result<Value, DecodeError> {
        no_upcasts(event_type, version, data)
    }
}

impl<E: TaggedEvent> EventPayload for E {
    fn event_type(&self) -> &'static str {
        self.name()
    }

    fn schema_version(&self) -> u32 {
        current_version(E::SCHEMAS, self.name()).unwrap_or(1)
    }

    fn encode_data(&self) -> Box<RawValue> {
        encode_data(self)
    }

    fn decode_data(
        event_type: &str,
        schema_version: u32,
        data: &RawValue,
    ) -> Result<Self, DecodeError> {
        decode_data(E::SCHEMAS, E::upcast, event_type, schema_version, data)
    }
}

/// Each event type this code reads and writes, with its current schema version.
pub type Schemas = &'static [(&'static str, u32)];

/// Turns data of `event_type` at one schema version into the next version's shape.
pub type UpcastStep = fn(event_type: &str, version: u32, data: Value) -> Result<Value, DecodeError>;

/// The schema version this code writes for `event_type`, if it knows it.
pub fn current_version(schemas: Schemas, event_type: &str) -> Option<u32> {
    schemas
        .iter()
        .find(|(name, _)| *name == event_type)
        .map(|(_, version)| *version)
}

/// The `data` of an adjacently tagged event.
pub fn encode_data<E: Serialize>(event: &E) -> Box<RawValue> {
    // Events hold strings, numbers and ids only: serialization cannot fail.
    // Through a `Value` on purpose: its objects sort their keys, and the
    // wire format (the golden files) has the data's keys in that order.
    let mut tagged = serde_json::to_value(event).expect("an event always serializes");
    let data = tagged.get_mut("data").map(Value::take);
    serde_json::value::to_raw_value(&data.unwrap_or_else(|| Value::Object(Default::default())))
        .expect("a JSON value serializes")
}

/// Reads `data` written as `event_type` at `schema_version`: an unknown type
/// or a newer version needs newer code; an older version is brought up one
/// `upcast` step at a time, so each step stays small and is written once.
pub fn decode_data<E: DeserializeOwned>(
    schemas: Schemas,
    upcast: UpcastStep,
    event_type: &str,
    schema_version: u32,
    data: &RawValue,
) -> Result<E, DecodeError> {
    let known =
        current_version(schemas, event_type).ok_or_else(|| DecodeError::UnknownEventType {
            event_type: event_type.to_owned(),
        })?;
    if schema_version > known {
        return Err(DecodeError::NewerSchema {
            event_type: event_type.to_owned(),
            found: schema_version,
            known,
        });
    }
    if schema_version == 0 {
        return Err(DecodeError::Malformed(format!(
            "{event_type}: schema version 0 does not exist"
        )));
    }
    let malformed = |e: serde_json::Error| {
        DecodeError::Malformed(format!("{event_type} v{schema_version}: {e}"))
    };
    // The current schema, as nearly every record is: read straight from the
    // text. Only an older one goes through a `Value` to be upcast.
    let upcast_text;
    let data = if schema_version == known {
        data.get()
    } else {
        let mut value: Value = serde_json::from_str(data.get()).map_err(malformed)?;
        for version in schema_version..known {
            value = upcast(event_type, version, value)?;
        }
        upcast_text = value.to_string();
        upcast_text.as_str()
    };
    // `{"event_type":<name>,"data":<data>}`, the tag first: serde reads the
    // data straight into its variant.
    let mut tagged = Vec::with_capacity(event_type.len() + data.len() + 32);
    tagged.extend_from_slice(br#"{"event_type":"#);
    serde_json::to_writer(&mut tagged, event_type).map_err(malformed)?;
    tagged.extend_from_slice(br#","data":"#);
    tagged.extend_from_slice(data.as_bytes());
    tagged.push(b'}');
    serde_json::from_slice(&tagged).map_err(malformed)
}

/// The upcast of an event type that has had one schema version only.
pub fn no_upcasts(event_type: &str, version: u32, _data: Value) -> Result<Value, DecodeError> {
    Err(DecodeError::Malformed(format!(
        "{event_type} has no schema version {version}"
    )))
}
