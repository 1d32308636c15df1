//! Rows of the `resources` table as `resource::Recorded` and back. The columns are a
//! versioned format of their own (see `state-schema/`), written field by field instead of
//! through `Recorded`'s serde derive, so that changing the in-memory type cannot silently
//! change what old and new binaries read.

use crate::resource::{Attributes, Drift, Recorded, ResourceType, Status};
use std::collections::BTreeSet;

/// The columns of one resource row, as stored.
pub(crate) struct ResourceRow {
    pub(crate) address: String,
    pub(crate) resource_type: String,
    pub(crate) host: Option<String>,
    pub(crate) attributes: String,
    pub(crate) sensitive: String,
    pub(crate) status: String,
    pub(crate) depends_on: String,
    /// JSON `{"gone": bool, "findings": [...]}` of drift a refresh recorded, or NULL.
    pub(crate) drift: Option<String>,
    /// The serial of the write that last changed the row (read only: writes set it).
    pub(crate) updated_serial: i64,
}

/// The `drift` column's text for `drift` (NULL for none).
pub(crate) fn drift_column(drift: Option<&Drift>) -> serde_json::Result<Option<String>> {
    drift
        .map(|d| {
            serde_json::to_string(&DriftColumn {
                gone: d.gone,
                findings: d.findings.clone(),
            })
        })
        .transpose()
}

/// The `drift` column: [`Drift`] without the serial, which is the row's own.
#[derive(serde::Serialize, serde::Deserialize)]
struct DriftColumn {
    gone: bool,
    findings: Vec<String>,
}

impl ResourceRow {
    /// The row for `resource`, or why it must not be stored.
    pub(crate) fn encode(resource: &Recorded) -> Result<ResourceRow, String> {
        if resource.address.is_empty() {
            return Err("a resource with an empty address cannot be recorded".to_string());
        }
        check_sensitive(resource)?;
        let json = |what: &str, r: serde_json::Result<String>| {
            r.map_err(|e| format!("cannot encode the {what} of {}: {e}", resource.address))
        };
        Ok(ResourceRow {
            address: resource.address.clone(),
            resource_type: resource.resource_type.as_str().to_string(),
            host: resource.host.clone(),
            attributes: json("attributes", serde_json::to_string(&resource.attributes))?,
            sensitive: json("sensitive set", serde_json::to_string(&resource.sensitive))?,
            status: resource.status.as_str().to_string(),
            depends_on: json("dependencies", serde_json::to_string(&resource.depends_on))?,
            drift: drift_column(resource.drift.as_ref())
                .map_err(|e| format!("cannot encode the drift of {}: {e}", resource.address))?,
            updated_serial: 0,
        })
    }

    /// The record this row holds, or what is wrong with it (a damaged row).
    pub(crate) fn decode(self) -> Result<Recorded, String> {
        let resource_type = ResourceType::parse(&self.resource_type)
            .ok_or_else(|| format!("unknown resource type {:?}", self.resource_type))?;
        let status = Status::parse(&self.status)
            .ok_or_else(|| format!("unknown status {:?}", self.status))?;
        let attributes: Attributes = serde_json::from_str(&self.attributes)
            .map_err(|e| format!("attributes are not a JSON object: {e}"))?;
        let sensitive: BTreeSet<String> = serde_json::from_str(&self.sensitive)
            .map_err(|e| format!("the sensitive set is not a JSON list of names: {e}"))?;
        let depends_on: Vec<String> = serde_json::from_str(&self.depends_on)
            .map_err(|e| format!("dependencies are not a JSON list of addresses: {e}"))?;
        let drift = match &self.drift {
            None => None,
            Some(text) => {
                let column: DriftColumn = serde_json::from_str(text)
                    .map_err(|e| format!("its drift is not what a refresh records: {e}"))?;
                Some(Drift {
                    gone: column.gone,
                    findings: column.findings,
                    recorded_at: u64::try_from(self.updated_serial).ok(),
                })
            }
        };
        Ok(Recorded {
            address: self.address,
            resource_type,
            host: self.host,
            attributes,
            sensitive,
            status,
            depends_on,
            drift,
        })
    }
}

/// The state never holds a secret in clear: an attribute marked sensitive must already be a
/// digest (`sha256:<hex>`, as the graph writes them) or null. Anything else is refused, and
/// the message names the attribute but never shows its value.
pub(crate) fn check_sensitive(resource: &Recorded) -> Result<(), String> {
    for name in &resource.sensitive {
        match resource.attributes.get(name) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(s)) if is_digest(s) => {}
            Some(_) => {
                return Err(format!(
                    "refusing to record attribute {name:?} of {} in the state: it is marked sensitive but its value is not a digest",
                    resource.address
                ));
            }
        }
    }
    Ok(())
}

/// `ALGORITHM:HEX` with a lowercase algorithm name (`sha256`, `sha512`, `hmac-sha256`, ...)
/// and at least 256 bits of lowercase hex: a fingerprint, not something a person typed.
pub(crate) fn is_digest(text: &str) -> bool {
    let Some((algorithm, hex)) = text.split_once(':') else {
        return false;
    };
    !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && hex.len() >= 64
        && hex.len() % 2 == 0
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
