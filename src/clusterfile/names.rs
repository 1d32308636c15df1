//! The shapes of names: Kubernetes label keys and values, DNS names, cluster and role names.

/// `[a-z0-9-]`, at most 63: the cluster name names the state entry and the data directory.
pub(crate) fn is_cluster_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Roles and plugin scopes: `|` separates scope roles, so a role cannot hold it.
pub(crate) fn is_role(role: &str) -> bool {
    !role.is_empty()
        && role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Kubernetes "name" part of a qualified name: ≤ 63, alphanumerics with `-_.` inside.
fn is_k8s_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= 63
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A DNS-1123 subdomain: lowercase labels of `[a-z0-9-]` separated by dots, ≤ 253.
pub(crate) fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            !label.is_empty()
                && label.len() <= 63
                && bytes
                    .first()
                    .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && bytes
                    .last()
                    .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        })
}

/// A host name as written in `/etc/hosts` or a registry domain: DNS labels of letters,
/// digits and `-`, any case.
pub(crate) fn is_hostname(name: &str) -> bool {
    is_dns_subdomain(&name.to_ascii_lowercase())
}

/// A label or taint key: `[prefix/]name`, prefix a DNS subdomain.
pub(crate) fn is_qualified_name(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_k8s_name(name),
        None => is_k8s_name(key),
    }
}

/// A label or taint value: empty, or a Kubernetes name.
pub(crate) fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_k8s_name(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_cluster_name("my-cluster-1"));
        assert!(!is_cluster_name("My_Cluster"));
        assert!(!is_cluster_name(&"a".repeat(64)));
        assert!(is_qualified_name("node-role.kubernetes.io/master"));
        assert!(!is_qualified_name("-bad"));
        assert!(!is_qualified_name("a/b/c"));
        assert!(is_label_value(""));
        assert!(!is_label_value("a b"));
        assert!(is_hostname("Sea.Hub"));
        assert!(!is_hostname("sea_hub"));
        assert!(is_role("master"));
        assert!(!is_role("a|b"));
    }
}
