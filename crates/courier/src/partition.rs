//! Routing a payload to its partition.

use serde_json::Value;

use crate::error::Error;
use crate::spec::{ChannelSpec, PartitionSpec};

/// Every partition of a channel: `[None]` when it is not partitioned.
pub fn all(spec: &ChannelSpec) -> Vec<Option<String>> {
    match &spec.partitions {
        None => vec![None],
        Some(PartitionSpec::Values { values, .. }) => {
            values.iter().map(|v| Some(v.to_string())).collect()
        }
        Some(PartitionSpec::Buckets { buckets, .. }) => {
            (0..*buckets).map(|b| Some(b.to_string())).collect()
        }
    }
}

/// The partition a payload belongs to.
pub fn route(spec: &ChannelSpec, payload: &Value) -> Result<Option<String>, Error> {
    let Some(partitions) = &spec.partitions else {
        return Ok(None);
    };
    let (field, value) = match partitions {
        PartitionSpec::Values { field, .. } | PartitionSpec::Buckets { field, .. } => {
            (field, payload.pointer(field))
        }
    };
    let unroutable = |problem: &str| Error::Unroutable {
        channel: spec.qualified_name(),
        field: field.to_string(),
        problem: problem.to_string(),
    };
    match (partitions, value) {
        (PartitionSpec::Values { values, .. }, Some(Value::String(s))) => values
            .iter()
            .find(|v| *v == s.as_str())
            .map(|v| Some(v.to_string()))
            .ok_or_else(|| unroutable(&format!("{s:?} is not one of {values:?}"))),
        (PartitionSpec::Buckets { buckets, .. }, Some(Value::String(s))) => Ok(Some(
            (fnv1a(s.as_bytes()) % u64::from(*buckets)).to_string(),
        )),
        (PartitionSpec::Buckets { buckets, .. }, Some(Value::Number(n))) => Ok(Some(
            (fnv1a(n.to_string().as_bytes()) % u64::from(*buckets)).to_string(),
        )),
        (_, None) => Err(unroutable("missing")),
        (_, Some(_)) => Err(unroutable("not a string or integer")),
    }
}

/// FNV-1a: stable across processes, platforms and releases, unlike std's
/// randomly seeded hasher, so every producer routes a value alike.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(partitions: PartitionSpec) -> ChannelSpec {
        ChannelSpec {
            partitions: Some(partitions),
            ..crate::keys::tests::SPEC
        }
    }

    #[test]
    fn routes_by_value_and_by_hash() {
        let regions = spec(PartitionSpec::Values {
            field: "/region".into(),
            values: vec!["eu".into(), "us".into()].into(),
        });
        assert_eq!(
            route(&regions, &json!({"region": "us"}))
                .unwrap()
                .as_deref(),
            Some("us")
        );
        assert_eq!(
            route(&regions, &json!({"region": "mars"})).unwrap_err().to_string(),
            "cannot route a message of shop.orders: field /region is \"mars\" is not one of [\"eu\", \"us\"]"
        );
        assert_eq!(all(&regions), [Some("eu".into()), Some("us".into())]);

        let hashed = spec(PartitionSpec::Buckets {
            field: "/id".into(),
            buckets: 4,
        });
        let first = route(&hashed, &json!({"id": "abc"})).unwrap();
        assert_eq!(first, route(&hashed, &json!({"id": "abc"})).unwrap());
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert!(route(&hashed, &json!({"id": 42})).is_ok());
        assert!(route(&hashed, &json!({})).is_err());
        assert_eq!(all(&hashed).len(), 4);
    }
}
