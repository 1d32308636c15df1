//! Limits on what untrusted input (a registry, an image, a Kubefile) can make sealer hold in
//! memory or write to disk. Without them, a few bytes of input can ask for gigabytes: an
//! endless manifest, a blob streamed past its size, a doubling ARG chain, a gzip bomb.
//! Each limit is listed, with how to raise it, in docs/operations.md ("Limits").

use std::time::Duration;

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// Manifests, indexes and image configs, from a registry or a layout: the JSON documents
/// sealer reads whole. containerd and Docker refuse manifests over 4 MiB as well, so no image
/// a registry serves them is refused here.
pub const DOCUMENT_MAX: u64 = 4 * MIB;

/// One value a Kubefile's `${NAME}` substitution makes (an ARG default, a LABEL, ...).
pub const EXPANDED_VALUE_MAX: usize = MIB as usize;

/// Every value a Kubefile's substitutions make, together: many values under the limit of one
/// must not add up to gigabytes either.
pub const EXPANDED_TOTAL_MAX: usize = 16 * MIB as usize;

/// The unpacked size of an image, its layers together, unless [`UNPACKED_VAR`] says
/// otherwise. Counted as the bytes the layers decompress to (files, and the tar headers
/// around them), so an entry count is bounded too.
pub const UNPACKED_DEFAULT: u64 = 8 * GIB;

/// One `http(s)://` APP source of a Kubefile: a server that never stops sending must not fill
/// the disk. As large as a whole image may unpack to by default, which no single file of a
/// usable image exceeds.
pub const DOWNLOAD_MAX: u64 = UNPACKED_DEFAULT;

/// The environment variable that sets the unpacked-size limit: bytes, or a size with a unit.
pub const UNPACKED_VAR: &str = "SEALER_MAX_UNPACKED";

/// A relay of the rootfs host to host costs about a second whatever it carries (a second SSH
/// connection, an `authorized_keys` edit, two more commands), and each round waits for the
/// last: it pays only when the operator would otherwise send a lot. A host's rootfs is
/// relayed when what it needs, times the hosts receiving it, is at least this much (64 MiB:
/// about 5 s of a 100 Mbit/s uplink); less goes from the operator directly.
pub const RELAY_MIN_DEFAULT: u64 = 64 * MIB;

/// The environment variable that sets [`RELAY_MIN_DEFAULT`]: bytes, or a size with a unit.
pub const RELAY_MIN_VAR: &str = "SEALER_RELAY_MIN";

/// A temp file of the store this old is a leftover of a process that was killed mid-write
/// (a live writer writes at least once per read timeout, 5 minutes).
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Parses a size: bytes (`1048576`) or a number with a unit, `K`, `M`, `G`, `T`, optionally
/// followed by `i`, `B` or `iB`, in any case: all are powers of 1024, as Docker reads them.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (write bytes, or e.g. 512MiB, 16GiB)"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let multiple = match unit {
        "" => 1,
        "k" => KIB,
        "m" => MIB,
        "g" => GIB,
        "t" => TIB,
        _ => return Err(format!("{text:?} has an unknown unit (use K, M, G or T)")),
    };
    match number.checked_mul(multiple) {
        Some(0) => Err("a limit of 0 would refuse everything".to_string()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("{text:?} is too large")),
    }
}

/// A size for messages: `4 MiB` when it is a whole number of a unit, else bytes.
pub fn format_size(bytes: u64) -> String {
    for (unit, name) in [(TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{} {name}", bytes / unit);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_bytes_or_binary_units() {
        assert_eq!(parse_size("1048576"), Ok(MIB));
        assert_eq!(parse_size("8GiB"), Ok(8 * GIB));
        assert_eq!(parse_size("8 gb"), Ok(8 * GIB));
        assert_eq!(parse_size("512M"), Ok(512 * MIB));
        assert_eq!(parse_size("2Ki"), Ok(2 * KIB));
        assert_eq!(parse_size(" 1T "), Ok(TIB));
        assert!(parse_size("").is_err());
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("1.5GiB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("8 PiB").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn sizes_show_in_the_largest_whole_unit() {
        assert_eq!(format_size(DOCUMENT_MAX), "4 MiB");
        assert_eq!(format_size(UNPACKED_DEFAULT), "8 GiB");
        assert_eq!(format_size(1536), "1536 bytes");
        assert_eq!(format_size(3 * KIB), "3 KiB");
        assert_eq!(format_size(0), "0 bytes");
    }
}
