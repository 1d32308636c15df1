//! States an older sealer wrote hold plain SHA-256 digests of secrets, env and Config data,
//! which anyone holding a plan made from them could check against a dictionary. Digests are
//! now keyed with the state's own key (`clusterfile::DigestKey`), so a state of a cluster
//! not yet marked keyed is read through a [`Rekey`]:
//!
//! - a recorded digest that is the plain digest of what the configuration holds now is the
//!   same value: it reads as its keyed digest (no change is planned, and apply rewrites it
//!   in the state);
//! - any other plain digest where a keyed one belongs (of a value since changed, or of a
//!   host no longer in the Clusterfile) cannot be keyed without the value: it reads as the
//!   keyed digest of a fixed marker, which matches nothing, so the change is planned and no
//!   plain digest reaches a plan.
//!
//! Pure: both digests come from compiling the same configuration twice.

use crate::clusterfile::{DigestKey, KEYED_PREFIX};
use crate::resource::{Attributes, Desired, Recorded};
use serde_json::Value;
use std::collections::BTreeMap;

/// Where a digest sits: the resource's address, the attribute, and the entry for an
/// attribute that is a map (`files`, `env`).
type Position = (String, String, Option<String>);

/// How digests of an older state read now.
#[derive(Debug, Clone)]
pub struct Rekey {
    /// Plain digest → keyed digest, where the two compilations differ.
    pairs: BTreeMap<Position, (String, String)>,
    /// The keyed digest of the marker: what a plain digest no configuration matches reads as.
    unknown: String,
}

impl Rekey {
    /// From the configuration compiled with [`DigestKey::legacy`] and with the state's key.
    pub fn new(legacy: &[Desired], keyed: &[Desired], key: &DigestKey) -> Rekey {
        let legacy: BTreeMap<&str, &Desired> =
            legacy.iter().map(|d| (d.address.as_str(), d)).collect();
        let mut pairs = BTreeMap::new();
        for desired in keyed {
            let Some(old) = legacy.get(desired.address.as_str()) else {
                continue;
            };
            for (attr, new_value) in &desired.attributes {
                let Some(old_value) = old.attributes.get(attr) else {
                    continue;
                };
                let position = |entry: Option<&String>| {
                    (desired.address.clone(), attr.clone(), entry.cloned())
                };
                match (old_value, new_value) {
                    (Value::String(a), Value::String(b)) if a != b => {
                        pairs.insert(position(None), (a.clone(), b.clone()));
                    }
                    (Value::Object(a), Value::Object(b)) => {
                        for (entry, b) in b {
                            if let (Some(Value::String(a)), Value::String(b)) = (a.get(entry), b)
                                && a != b
                            {
                                pairs.insert(position(Some(entry)), (a.clone(), b.clone()));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Rekey {
            pairs,
            unknown: key.digest(b"sealer: a digest an older sealer recorded"),
        }
    }

    /// Rewrites the digests of one recorded resource as the module docs say; whether any
    /// changed.
    pub fn apply(&self, recorded: &mut Recorded) -> bool {
        let sensitive = recorded.sensitive.clone();
        self.apply_attributes(&recorded.address, &mut recorded.attributes, |a| {
            sensitive.contains(a)
        })
    }

    /// The same for the attributes of `address` (a resource, or a history row of it), whose
    /// sensitive attributes `sensitive` names.
    pub fn apply_attributes(
        &self,
        address: &str,
        attributes: &mut Attributes,
        sensitive: impl Fn(&str) -> bool,
    ) -> bool {
        let mut changed = false;
        for (attr, value) in attributes.iter_mut() {
            match value {
                Value::String(s) => {
                    let position = (address.to_string(), attr.clone(), None);
                    changed |= self.rewrite(&position, s, sensitive(attr));
                }
                Value::Object(map) => {
                    for (entry, v) in map.iter_mut() {
                        if let Value::String(s) = v {
                            let position = (address.to_string(), attr.clone(), Some(entry.clone()));
                            changed |= self.rewrite(&position, s, false);
                        }
                    }
                }
                _ => {}
            }
        }
        changed
    }

    fn rewrite(&self, position: &Position, value: &mut String, sensitive: bool) -> bool {
        let new = match self.pairs.get(position) {
            Some((legacy, keyed)) if value == legacy => keyed.clone(),
            Some((_, keyed)) if value != keyed => self.unknown.clone(),
            None if sensitive && !value.starts_with(KEYED_PREFIX) => self.unknown.clone(),
            _ => return false,
        };
        *value = new;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{ResourceType, Status};
    use serde_json::json;

    fn desired(address: &str, attributes: Value) -> Desired {
        Desired {
            address: address.into(),
            resource_type: ResourceType::Host,
            host: None,
            attributes: serde_json::from_value::<Attributes>(attributes).unwrap(),
            sensitive: ["password".to_string()].into(),
            computed: Default::default(),
            replace_on: Default::default(),
            depends_on: Vec::new(),
        }
    }

    fn recorded(d: &Desired) -> Recorded {
        Recorded {
            address: d.address.clone(),
            resource_type: d.resource_type,
            host: None,
            attributes: d.attributes.clone(),
            sensitive: d.sensitive.clone(),
            status: Status::Ready,
            depends_on: Vec::new(),
            drift: None,
        }
    }

    #[test]
    fn matching_plain_digests_read_as_keyed_and_the_others_as_the_marker() {
        let key = DigestKey::new([1; 32]);
        let legacy = DigestKey::legacy();
        let d = |k: &DigestKey, pw: &[u8]| {
            desired(
                "host.a",
                json!({"password": k.digest(pw), "user": "root",
                       "env": {"A": k.digest(b"a"), "B": "same"}}),
            )
        };
        let rekey = Rekey::new(&[d(&legacy, b"pw")], &[d(&key, b"pw")], &key);

        let mut same = recorded(&d(&legacy, b"pw"));
        assert!(rekey.apply(&mut same));
        assert_eq!(same.attributes, d(&key, b"pw").attributes);
        assert!(!rekey.apply(&mut same), "keyed values stay as they are");

        let mut changed = recorded(&d(&legacy, b"old password"));
        assert!(rekey.apply(&mut changed));
        assert_eq!(changed.attributes["password"], json!(rekey.unknown));

        // A host the configuration no longer has: its plain password digest is not kept.
        let mut gone = recorded(&desired("host.b", json!({"password": legacy.digest(b"x")})));
        assert!(rekey.apply(&mut gone));
        assert_eq!(gone.attributes["password"], json!(rekey.unknown));
    }
}
