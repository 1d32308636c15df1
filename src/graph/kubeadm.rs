//! The kubeadm configuration master0 is initialised with: the image's `etc/kubeadm.yml`,
//! overlaid by the Clusterfile's kubeadm documents (deep merge, by kind), then the values
//! sealer must control (`deploy.md`: API endpoint, version, networks, certificate SANs).
//!
//! Made once, at plan time: the text is `kubernetes.init`'s `kubeadm_config` attribute, so
//! the configuration a reviewer reads is byte for byte the one kubeadm is given.

use crate::diag::{Error, Result};
use serde_json::{Map, Value, json};

/// What sealer forces into the configuration.
#[derive(Debug, Clone)]
pub struct Forced {
    pub kube_version: String,
    pub master0: String,
    pub vip: String,
    pub pod_cidr: String,
    pub svc_cidr: String,
    pub cert_sans: Vec<String>,
}

fn kind_of(doc: &Value) -> &str {
    doc.get("kind").and_then(Value::as_str).unwrap_or("")
}

/// Deep merge: maps merge key by key, anything else is replaced.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, value) => *slot = value.clone(),
    }
}

fn object<'a>(doc: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    let map = doc.as_object_mut().expect("kubeadm documents are maps");
    let entry = map.entry(key.to_string()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made a map")
}

/// Builds the configuration text. `image` is the image's `etc/kubeadm.yml` (if any);
/// `documents` are the Clusterfile's kubeadm documents.
pub fn config(image: Option<&str>, documents: &[Value], forced: &Forced) -> Result<String> {
    let mut docs: Vec<Value> = match image {
        Some(text) => serde_saphyr::from_multiple::<Value>(text)
            .map_err(|e| {
                Error::msg(format!(
                    "the image's etc/kubeadm.yml is not valid YAML: {e}"
                ))
                .hint("fix etc/kubeadm.yml in the cluster image's build context and build it again")
            })?
            .into_iter()
            .filter(Value::is_object)
            .collect(),
        None => Vec::new(),
    };
    for doc in documents {
        match docs.iter_mut().find(|d| kind_of(d) == kind_of(doc)) {
            Some(existing) => merge(existing, doc),
            None => docs.push(doc.clone()),
        }
    }
    for (kind, api) in [
        ("InitConfiguration", "kubeadm.k8s.io/v1beta3"),
        ("ClusterConfiguration", "kubeadm.k8s.io/v1beta3"),
    ] {
        if !docs.iter().any(|d| kind_of(d) == kind) {
            docs.push(json!({"apiVersion": api, "kind": kind}));
        }
    }
    for doc in &mut docs {
        match kind_of(doc) {
            "InitConfiguration" => {
                let endpoint = object(doc, "localAPIEndpoint");
                endpoint.insert("advertiseAddress".into(), json!(forced.master0));
                endpoint.insert("bindPort".into(), json!(6443));
            }
            "ClusterConfiguration" => {
                let map = doc.as_object_mut().expect("a map");
                map.insert("kubernetesVersion".into(), json!(forced.kube_version));
                map.insert(
                    "controlPlaneEndpoint".into(),
                    json!("apiserver.cluster.local:6443"),
                );
                let networking = object(doc, "networking");
                networking.insert("podSubnet".into(), json!(forced.pod_cidr));
                networking.insert("serviceSubnet".into(), json!(forced.svc_cidr));
                // Other masters are not listed: kubeadm puts each joining master's address in
                // its own certificate, and listing them would change this text (and so
                // replace the cluster) whenever a master is added.
                let mut sans = vec![
                    "127.0.0.1".to_string(),
                    "apiserver.cluster.local".to_string(),
                    forced.vip.clone(),
                    forced.master0.clone(),
                ];
                sans.extend(forced.cert_sans.iter().cloned());
                let api_server = object(doc, "apiServer");
                let mut all: Vec<Value> = api_server
                    .get("certSANs")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for s in sans {
                    if !all.iter().any(|v| v.as_str() == Some(s.as_str())) {
                        all.push(json!(s));
                    }
                }
                api_server.insert("certSANs".into(), Value::Array(all));
            }
            _ => {}
        }
    }
    let mut out = String::new();
    for doc in &docs {
        out.push_str("---\n");
        let text = serde_saphyr::to_string(doc)
            .map_err(|e| Error::msg(format!("cannot write the kubeadm configuration: {e}")))?;
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_defaults_then_clusterfile_then_forced_values() {
        let image = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: v1.0.0\nnetworking: {dnsDomain: cluster.local}\napiServer: {certSANs: [a.example.com]}\n";
        let docs = vec![
            json!({"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "ClusterConfiguration", "networking": {"dnsDomain": "corp.local"}}),
        ];
        let forced = Forced {
            kube_version: "v1.22.15".into(),
            master0: "10.0.0.2".into(),
            vip: "10.103.97.2".into(),
            pod_cidr: "100.64.0.0/10".into(),
            svc_cidr: "10.96.0.0/22".into(),
            cert_sans: vec!["api.example.com".into()],
        };
        let text = config(Some(image), &docs, &forced).unwrap();
        let parsed: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        let cluster = parsed
            .iter()
            .find(|d| kind_of(d) == "ClusterConfiguration")
            .unwrap();
        assert_eq!(cluster["kubernetesVersion"], "v1.22.15");
        assert_eq!(cluster["networking"]["dnsDomain"], "corp.local");
        assert_eq!(cluster["networking"]["podSubnet"], "100.64.0.0/10");
        assert_eq!(
            cluster["controlPlaneEndpoint"],
            "apiserver.cluster.local:6443"
        );
        let sans = cluster["apiServer"]["certSANs"].as_array().unwrap();
        assert!(
            sans.contains(&json!("a.example.com"))
                && sans.contains(&json!("10.0.0.2"))
                && !sans.contains(&json!("10.0.0.3"))
                && sans.contains(&json!("api.example.com"))
        );
        let init = parsed
            .iter()
            .find(|d| kind_of(d) == "InitConfiguration")
            .unwrap();
        assert_eq!(init["localAPIEndpoint"]["advertiseAddress"], "10.0.0.2");
    }
}
