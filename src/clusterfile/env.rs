//! Environment values, the keys sealer derives, and the network defaults.
//!
//! `K=a;b` is a list (exported as a bash array on hosts); anything else is a scalar. Merged
//! environments are kept sorted by key so that their digests are reproducible.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const DEFAULT_SVC_CIDR: &str = "10.96.0.0/22";
pub const DEFAULT_POD_CIDR: &str = "100.64.0.0/10";

/// Keys sealer computes; a user value for any of them is an error, whether or not its
/// derivation applies to this cluster.
pub const DERIVED_KEYS: &[&str] = &[
    "LocalRegistryDomain",
    "LocalRegistryPort",
    "LocalRegistryURL",
    "ExternalRegistryDomain",
    "ExternalRegistryPort",
    "ExternalRegistryURL",
    "RegistryDomain",
    "RegistryPort",
    "RegistryURL",
    "ContainerRuntime",
    "KubeSvcIP",
    "DNSSvcIP",
    "HostIP",
];

/// The value of one env key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EnvValue {
    Scalar(String),
    List(Vec<String>),
}

impl EnvValue {
    /// The value part of `K=V`: a list when it contains `;`.
    pub fn parse(text: &str) -> EnvValue {
        if text.contains(';') {
            EnvValue::List(text.split(';').map(str::to_string).collect())
        } else {
            EnvValue::Scalar(text.to_string())
        }
    }

    /// The elements: one for a scalar.
    pub fn items(&self) -> Vec<&str> {
        match self {
            EnvValue::Scalar(s) => vec![s.as_str()],
            EnvValue::List(items) => items.iter().map(String::as_str).collect(),
        }
    }
}

impl fmt::Display for EnvValue {
    /// As written in a Clusterfile: list items joined by `;`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvValue::Scalar(s) => f.write_str(s),
            EnvValue::List(items) => f.write_str(&items.join(";")),
        }
    }
}

/// An environment: keys in sorted order, later merges override earlier ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Env(BTreeMap<String, EnvValue>);

impl Env {
    pub fn new() -> Env {
        Env::default()
    }

    pub fn get(&self, key: &str) -> Option<&EnvValue> {
        self.0.get(key)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn insert(&mut self, key: impl Into<String>, value: EnvValue) {
        self.0.insert(key.into(), value);
    }

    pub fn insert_scalar(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.insert(key, EnvValue::Scalar(value.into()));
    }

    /// Sets `key` only when it has no value yet (defaults).
    pub fn insert_default(&mut self, key: &str, value: &str) {
        if !self.0.contains_key(key) {
            self.insert_scalar(key, value);
        }
    }

    /// Every key of `over` overrides this environment's.
    pub fn merge(&mut self, over: &Env) {
        for (k, v) in &over.0 {
            self.0.insert(k.clone(), v.clone());
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &EnvValue)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, EnvValue)> for Env {
    fn from_iter<I: IntoIterator<Item = (String, EnvValue)>>(iter: I) -> Env {
        Env(iter.into_iter().collect())
    }
}

/// Whether `key` can be exported by bash: a shell variable name.
pub fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An IP network, `ADDRESS/PREFIX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// The network address (host bits cleared).
    pub network: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let Some((address, prefix)) = text.split_once('/') else {
            return Err("no /PREFIX".to_string());
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("`{address}` is not an IP address"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = match prefix.parse::<u8>() {
            Ok(p) if p <= max && prefix.chars().all(|c| c.is_ascii_digit()) => p,
            _ => return Err(format!("prefix `{prefix}` is not a number from 0 to {max}")),
        };
        // kubeadm masks host bits the same way (Go's net.ParseCIDR).
        let network = match address {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Ok(IpNet { network, prefix })
    }

    /// The `n`th address after the network address, when the network holds it.
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        match self.network {
            IpAddr::V4(a) => {
                let size = 1u128 << (32 - u32::from(self.prefix));
                (n < size).then(|| IpAddr::V4(Ipv4Addr::from(u32::from(a) + n as u32)))
            }
            IpAddr::V6(a) => {
                let bits = 128 - u32::from(self.prefix);
                let fits = bits >= 128 || n < (1u128 << bits);
                fits.then(|| IpAddr::V6(Ipv6Addr::from(u128::from(a) + n)))
            }
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The networks of a CIDR env value: `,` separates dual-stack networks, as kubeadm's
/// serviceSubnet does; a `;` list is accepted too.
pub fn parse_cidrs(value: &EnvValue) -> Result<Vec<IpNet>, String> {
    let mut nets = Vec::new();
    for item in value.items() {
        for part in item.split(',') {
            let part = part.trim();
            nets.push(IpNet::parse(part).map_err(|why| format!("`{part}`: {why}"))?);
        }
    }
    Ok(nets)
}

/// `KubeSvcIP` (1st address of the first network) and `DNSSvcIP` (10th) of a `SvcCIDR`.
pub fn service_ips(svc_cidr: &EnvValue) -> Result<(IpAddr, IpAddr), String> {
    let nets = parse_cidrs(svc_cidr)?;
    let Some(first) = nets.first() else {
        return Err("no network".to_string());
    };
    match (first.nth(1), first.nth(10)) {
        (Some(kube), Some(dns)) => Ok((kube, dns)),
        _ => Err(format!(
            "`{first}` is too small: DNSSvcIP is its 10th address"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ips_are_the_first_and_tenth_address() {
        let (kube, dns) = service_ips(&EnvValue::parse(DEFAULT_SVC_CIDR)).unwrap();
        assert_eq!(kube.to_string(), "10.96.0.1");
        assert_eq!(dns.to_string(), "10.96.0.10");
        let (kube, dns) = service_ips(&EnvValue::parse("fd00:10::/108,10.96.0.0/16")).unwrap();
        assert_eq!(kube.to_string(), "fd00:10::1");
        assert_eq!(dns.to_string(), "fd00:10::a");
        assert!(service_ips(&EnvValue::parse("10.96.0.0/29")).is_err());
        assert_eq!(
            IpNet::parse("10.96.0.5/22").unwrap().to_string(),
            "10.96.0.0/22"
        );
        assert!(IpNet::parse("10.96.0.0/33").is_err());
        assert!(IpNet::parse("10.96.0.0").is_err());
        assert!(IpNet::parse("::/0").unwrap().nth(10).is_some());
        assert!(IpNet::parse("0.0.0.0/0").unwrap().nth(10).is_some());
    }

    #[test]
    fn semicolons_make_lists() {
        assert_eq!(
            EnvValue::parse("a;b"),
            EnvValue::List(vec!["a".into(), "b".into()])
        );
        assert_eq!(EnvValue::parse("a,b"), EnvValue::Scalar("a,b".into()));
        assert_eq!(EnvValue::parse("a;b").to_string(), "a;b");
    }
}
