//! The Kyverno `ClusterPolicy` that makes Pods pull from the cluster's registry (spec
//! `deploy.md`, "Image policy"): rewrite the registry part of every container image to
//! `RegistryURL`, keeping path, tag and digest; skip images already there and excluded
//! namespaces.

/// The policy YAML. Deterministic: same registry and exclusions, same text.
pub fn kyverno_policy(registry_url: &str, exclude: &[String]) -> String {
    let mut namespaces = String::new();
    for ns in exclude {
        namespaces.push_str(&format!("                - {}\n", yaml_string(ns)));
    }
    let mut rules = String::new();
    for (name, field) in [
        ("containers", "containers"),
        ("init-containers", "initContainers"),
        ("ephemeral-containers", "ephemeralContainers"),
    ] {
        rules.push_str(&format!(
            r#"    - name: redirect-{name}
      match:
        any:
          - resources:
              kinds: [Pod]
              operations: [CREATE, UPDATE]
      exclude:
        any:
          - resources:
              namespaces:
{namespaces}      preconditions:
        all:
          - key: "{{{{ request.object.spec.{field} || `[]` | length(@) }}}}"
            operator: GreaterThanOrEquals
            value: 1
      mutate:
        foreach:
          - list: "request.object.spec.{field}"
            preconditions:
              all:
                - key: "{{{{ images.{field}.\"{{{{element.name}}}}\".registry }}}}"
                  operator: NotEquals
                  value: {registry}
            patchStrategicMerge:
              spec:
                {field}:
                  - name: "{{{{ element.name }}}}"
                    image: "{registry_url}/{{{{ images.{field}.\"{{{{element.name}}}}\".path }}}}{{{{ images.{field}.\"{{{{element.name}}}}\".tag && ':' || '' }}}}{{{{ images.{field}.\"{{{{element.name}}}}\".tag || '' }}}}{{{{ images.{field}.\"{{{{element.name}}}}\".digest && '@' || '' }}}}{{{{ images.{field}.\"{{{{element.name}}}}\".digest || '' }}}}"
"#,
            registry = yaml_string(registry_url),
        ));
    }
    format!(
        r#"apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: sealer-redirect-registry
  annotations:
    policies.kyverno.io/description: Pull every Pod image from the cluster registry {registry_url}.
spec:
  background: false
  rules:
{rules}"#
    )
}

fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_is_valid_yaml_with_three_rules() {
        let text = kyverno_policy("sea.hub:5000", &["kube-system".into(), "kyverno".into()]);
        insta::assert_snapshot!(text);
        let value: serde_json::Value = serde_saphyr::from_str(&text).expect("valid YAML");
        assert_eq!(value["kind"], "ClusterPolicy");
        assert_eq!(value["spec"]["rules"].as_array().map(Vec::len), Some(3));
        assert_eq!(text.matches("- name: redirect-").count(), 3);
        assert!(text.contains(r#"sea.hub:5000/{{ images.containers.\"{{element.name}}\".path }}"#));
        assert_eq!(
            text,
            kyverno_policy("sea.hub:5000", &["kube-system".into(), "kyverno".into()])
        );
    }
}
