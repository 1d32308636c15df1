//! Random identifiers: state lineages (UUID v4) and lock IDs, from the operating system's
//! random source. Written out here rather than pulling in a UUID crate for one function.

use crate::{Error, Result};

/// `N` random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::msg(format!(
            "cannot get random bytes from the operating system: {e}"
        ))
    })?;
    Ok(bytes)
}

/// A random UUID version 4 in its canonical lowercase form (RFC 9562, section 5.4).
pub(crate) fn new_lineage() -> Result<String> {
    Ok(format_uuid_v4(random_bytes::<16>()?))
}

/// A random lock ID: 16 lowercase hex digits, short enough to type into
/// `sealer state unlock ID`, and 64 random bits are plenty for one row per cluster.
pub(crate) fn new_lock_id() -> Result<String> {
    Ok(hex(&random_bytes::<8>()?))
}

pub(crate) fn format_uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // variant 10xx (RFC 9562)
    let h = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Whether `text` is a lineage as [`new_lineage`] writes it; a state row whose lineage is
/// not is damaged.
pub(crate) fn is_lineage(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
