//! What a generated message type promises, and the rules applied to it.
//!
//! Generated code states facts (schema name, version, the schema itself, the
//! idempotency-key fields); the functions here apply the rules: a payload is
//! validated against its own schema before it is written and after it is
//! read, because the generated Rust types do not enforce everything the
//! schema says (typify leaves numeric bounds unchecked, for one).

use std::sync::OnceLock;

use courier_schema::Validator;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::Error;

/// One released version of a message, implemented by generated code.
pub trait Contract: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// `<domain>.<message>`, the name carried in every envelope.
    const SCHEMA: &'static str;
    /// The version, from the schema file name.
    const VERSION: u32;
    /// The JSON Schema of this version, embedded at generation time.
    const SCHEMA_JSON: &'static str;
    /// JSON pointers to the payload fields that form the idempotency key.
    const IDEMPOTENCY_KEY: &'static [&'static str];

    /// The compiled schema. Generated code provides only the storage, so the
    /// schema is compiled once per type, by [`compiled_validator`].
    fn validator() -> Result<&'static Validator, Error>;
}

/// A set of message versions that one consumer reads, implemented by the
/// generated enum over a message's versions.
pub trait Readable: Sized + Send + 'static {
    /// `<domain>.<message>`.
    const SCHEMA: &'static str;
    /// Versions this reader decodes, ascending.
    const VERSIONS: &'static [u32];

    /// Decodes a payload written with schema version `version`.
    fn decode(version: u32, payload: &Value) -> Result<Self, Error>;
}

/// Compiles `T`'s embedded schema into `cell` on first use.
pub fn compiled_validator<T: Contract>(
    cell: &'static OnceLock<Validator>,
) -> Result<&'static Validator, Error> {
    if let Some(validator) = cell.get() {
        return Ok(validator);
    }
    let embedded = |problems: String| Error::EmbeddedSchema {
        schema: T::SCHEMA,
        version: T::VERSION,
        problems,
    };
    let schema: Value =
        serde_json::from_str(T::SCHEMA_JSON).map_err(|e| embedded(e.to_string()))?;
    let validator = Validator::compile(&schema).map_err(|problems| {
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        embedded(problems.join("; "))
    })?;
    Ok(cell.get_or_init(|| validator))
}

/// Checks `payload` against `T`'s schema, listing every violation.
pub fn validate<T: Contract>(payload: &Value) -> Result<(), Error> {
    T::validator()?
        .validate(payload)
        .map_err(|errors| Error::InvalidPayload {
            schema: T::SCHEMA,
            version: T::VERSION,
            errors,
        })
}

/// Serializes a message and checks it against its schema, so the runtime
/// never writes a payload its own schema would reject.
pub fn encode<T: Contract>(message: &T) -> Result<Value, Error> {
    let payload = serde_json::to_value(message)?;
    validate::<T>(&payload)?;
    Ok(payload)
}

/// Validates a payload read from Redis, then decodes it into `T`.
pub fn decode<T: Contract>(payload: &Value) -> Result<T, Error> {
    validate::<T>(payload)?;
    T::deserialize(payload).map_err(|source| Error::Decode {
        schema: T::SCHEMA,
        version: T::VERSION,
        source,
    })
}

/// The error a [`Readable`] returns for a version it was not generated for.
pub fn unsupported<R: Readable>(version: u32) -> Error {
    Error::VersionUnsupported {
        schema: R::SCHEMA,
        version,
        supported: R::VERSIONS,
    }
}

/// Derives the idempotency key from an encoded payload: the values of the
/// key fields, in order, joined by `:`. A `:` or `%` inside a value is
/// percent-escaped so that two different field tuples never give one key.
pub fn idempotency_key<T: Contract>(payload: &Value) -> Result<String, Error> {
    key_of(payload, T::IDEMPOTENCY_KEY).map_err(|(pointer, problem)| Error::IdempotencyKey {
        schema: T::SCHEMA,
        version: T::VERSION,
        pointer,
        problem,
    })
}

/// [`idempotency_key`] for a payload whose type is not known at compile
/// time, from its version's key pointers (`MessageVersion::idempotency_key`
/// of the registry): the key, or the pointer that failed and why.
pub fn key_of<'p, P: AsRef<str>>(
    payload: &Value,
    pointers: &'p [P],
) -> Result<String, (&'p str, &'static str)> {
    let mut key = String::new();
    for (i, pointer) in pointers.iter().enumerate() {
        let pointer = pointer.as_ref();
        if i > 0 {
            key.push(':');
        }
        match payload.pointer(pointer) {
            Some(Value::String(s)) if s.is_empty() => return Err((pointer, "empty")),
            Some(Value::String(s)) => escape_key_part(s, &mut key),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => key.push_str(&n.to_string()),
            Some(_) => return Err((pointer, "not a string or integer")),
            None => return Err((pointer, "missing")),
        }
    }
    Ok(key)
}

fn escape_key_part(part: &str, out: &mut String) {
    for c in part.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// A hand-written contract, standing in for generated code.
    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Order {
        order_id: String,
        line: u64,
        quantity: i64,
    }

    impl Contract for Order {
        const SCHEMA: &'static str = "shop.order";
        const VERSION: u32 = 1;
        const SCHEMA_JSON: &'static str = r#"{
            "type": "object", "additionalProperties": false,
            "required": ["order_id", "line", "quantity"],
            "properties": {
                "order_id": {"type": "string", "minLength": 1},
                "line": {"type": "integer", "minimum": 0},
                "quantity": {"type": "integer", "minimum": 1, "maximum": 100}
            }
        }"#;
        const IDEMPOTENCY_KEY: &'static [&'static str] = &["/order_id", "/line"];

        fn validator() -> Result<&'static Validator, Error> {
            static VALIDATOR: OnceLock<Validator> = OnceLock::new();
            compiled_validator::<Self>(&VALIDATOR)
        }
    }

    fn order(order_id: &str, quantity: i64) -> Order {
        Order {
            order_id: order_id.into(),
            line: 2,
            quantity,
        }
    }

    #[test]
    fn encode_refuses_what_the_types_allow_but_the_schema_does_not() {
        let err = encode(&order("o-1", 101)).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::DeadLetter);
        assert_eq!(
            err.to_string(),
            "shop.order v1 payload is invalid: /quantity: 101 is greater than the maximum 100"
        );
        assert!(encode(&order("o-1", 100)).is_ok());
    }

    #[test]
    fn decode_validates_before_deserializing() {
        let payload = serde_json::json!({"order_id": "o-1", "line": 2, "quantity": 0});
        assert!(matches!(
            decode::<Order>(&payload),
            Err(Error::InvalidPayload { .. })
        ));
        let payload = serde_json::json!({"order_id": "o-1", "line": 2, "quantity": 3});
        assert_eq!(decode::<Order>(&payload).unwrap(), order("o-1", 3));
    }

    #[test]
    fn idempotency_key_joins_and_escapes_fields() {
        let key = |id: &str| idempotency_key::<Order>(&encode(&order(id, 1)).unwrap()).unwrap();
        assert_eq!(key("o-1"), "o-1:2");
        assert_eq!(key("a:b%"), "a%3Ab%25:2");
        assert_ne!(key("a:2"), key("a"));
        let missing = serde_json::json!({"line": 2});
        assert_eq!(
            idempotency_key::<Order>(&missing).unwrap_err().to_string(),
            "shop.order v1: idempotency key field /order_id is missing"
        );
    }
}
