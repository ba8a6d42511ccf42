//! Kubernetes manifests as text (YAML, multi-document, or JSON; single objects or `kind: List`
//! as `kubectl get -o yaml|json` writes them) → typed objects. Pure: the caller reads files.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::objects::{
    HarvesterSetting, KubeVirt, Node, Pod, ResourceQuota, VirtualMachine, VirtualMachineInstance,
};

/// An object the tool understands.
#[derive(Debug, Clone)]
pub enum Object {
    Vm(Box<VirtualMachine>),
    Vmi(Box<VirtualMachineInstance>),
    Pod(Box<Pod>),
    Node(Box<Node>),
    KubeVirt(Box<KubeVirt>),
    HarvesterSetting(Box<HarvesterSetting>),
    ResourceQuota(Box<ResourceQuota>),
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{origin}: not valid YAML or JSON (document {doc}): {message}")]
    Syntax {
        origin: String,
        doc: usize,
        message: String,
    },
    #[error("{origin}: {kind} {name:?} does not have the expected shape: {message}")]
    Shape {
        origin: String,
        kind: String,
        name: String,
        message: String,
    },
}

/// Parse all documents of a manifest text. `origin` names the file in errors; `kind_hint` is
/// used for list items without `kind` (support bundles name the resource in the file name).
pub fn parse(
    text: &str,
    origin: &str,
    kind_hint: Option<&str>,
) -> Result<Vec<Object>, ManifestError> {
    let mut out = Vec::new();
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // JSON: one value, or a stream of values.
        let stream = serde_json::Deserializer::from_str(trimmed).into_iter::<Value>();
        for (i, doc) in stream.enumerate() {
            let doc = doc.map_err(|e| ManifestError::Syntax {
                origin: origin.to_string(),
                doc: i + 1,
                message: e.to_string(),
            })?;
            collect(doc, origin, kind_hint, &mut out)?;
        }
        return Ok(out);
    }
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize_yaml(doc).map_err(|e| ManifestError::Syntax {
            origin: origin.to_string(),
            doc: i + 1,
            message: e.to_string(),
        })?;
        collect(value, origin, kind_hint, &mut out)?;
    }
    Ok(out)
}

trait FromYaml: Sized {
    fn deserialize_yaml(d: serde_yaml::Deserializer<'_>) -> Result<Self, serde_yaml::Error>;
}

impl FromYaml for Value {
    fn deserialize_yaml(d: serde_yaml::Deserializer<'_>) -> Result<Self, serde_yaml::Error> {
        serde::Deserialize::deserialize(d)
    }
}

fn collect(
    doc: Value,
    origin: &str,
    hint: Option<&str>,
    out: &mut Vec<Object>,
) -> Result<(), ManifestError> {
    match doc {
        Value::Null => Ok(()),
        Value::Array(items) => {
            for item in items {
                collect(item, origin, hint, out)?;
            }
            Ok(())
        }
        Value::Object(mut map) => {
            let kind = map
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(Value::Array(items)) = map.remove("items") {
                // `kind: List` or `<Kind>List`: items may omit their kind.
                let item_hint = kind
                    .strip_suffix("List")
                    .filter(|k| !k.is_empty())
                    .map(str::to_string)
                    .or(hint.map(str::to_string));
                for item in items {
                    let item = with_kind(item, item_hint.as_deref());
                    collect(item, origin, hint, out)?;
                }
                return Ok(());
            }
            let value = Value::Object(map);
            let kind = if kind.is_empty() {
                hint.unwrap_or("").to_string()
            } else {
                kind
            };
            if let Some(obj) = typed(&kind, value, origin)? {
                out.push(obj);
            }
            Ok(())
        }
        // A scalar document (a stray string) is not an object: ignore it like kubectl would not.
        _ => Ok(()),
    }
}

fn with_kind(item: Value, kind: Option<&str>) -> Value {
    match (item, kind) {
        (Value::Object(mut m), Some(k)) if !m.contains_key("kind") => {
            m.insert("kind".into(), Value::String(k.to_string()));
            Value::Object(m)
        }
        (other, _) => other,
    }
}

fn typed(kind: &str, value: Value, origin: &str) -> Result<Option<Object>, ManifestError> {
    fn de<T: DeserializeOwned>(
        kind: &str,
        value: Value,
        origin: &str,
    ) -> Result<Box<T>, ManifestError> {
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        serde_json::from_value(value)
            .map(Box::new)
            .map_err(|e| ManifestError::Shape {
                origin: origin.to_string(),
                kind: kind.to_string(),
                name,
                message: e.to_string(),
            })
    }
    Ok(Some(match kind {
        "VirtualMachine" => Object::Vm(de(kind, value, origin)?),
        "VirtualMachineInstance" => Object::Vmi(de(kind, value, origin)?),
        "Pod" => Object::Pod(de(kind, value, origin)?),
        "Node" => Object::Node(de(kind, value, origin)?),
        "KubeVirt" => Object::KubeVirt(de(kind, value, origin)?),
        "ResourceQuota" => Object::ResourceQuota(de(kind, value, origin)?),
        "Setting"
            if value
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_none_or(|a| a.starts_with("harvesterhci.io/")) =>
        {
            Object::HarvesterSetting(de(kind, value, origin)?)
        }
        _ => return Ok(None),
    }))
}

/// The kind a support-bundle file holds, from its name (`virtualmachines.yaml` → VirtualMachine).
pub fn kind_from_file_name(name: &str) -> Option<&'static str> {
    let stem = name.rsplit('/').next()?.split('.').next()?;
    Some(match stem {
        "virtualmachines" => "VirtualMachine",
        "virtualmachineinstances" => "VirtualMachineInstance",
        "pods" => "Pod",
        "nodes" => "Node",
        "kubevirts" => "KubeVirt",
        "settings" => "Setting",
        "resourcequotas" => "ResourceQuota",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_multi_document_and_lists() {
        let text = r#"
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata: {name: a, namespace: ns}
spec:
  template:
    spec:
      domain:
        memory: {guest: 1948Mi}
        resources: {limits: {memory: 2Gi}}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: p, namespace: ns}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: ignored}
---
"#;
        let objs = parse(text, "x.yaml", None).unwrap();
        assert_eq!(objs.len(), 2);
        let Object::Vm(vm) = &objs[0] else { panic!() };
        assert_eq!(
            vm.spec
                .template
                .spec
                .domain
                .memory
                .as_ref()
                .unwrap()
                .guest
                .as_ref()
                .unwrap()
                .as_str(),
            "1948Mi"
        );
        assert!(matches!(objs[1], Object::Pod(_)));
    }

    #[test]
    fn json_lists_with_kindless_items_and_numbers() {
        let text = r#"{"apiVersion":"kubevirt.io/v1","kind":"VirtualMachineInstanceList","items":[
            {"metadata":{"name":"v","namespace":"n"},"spec":{"domain":{"resources":{"requests":{"memory":1073741824}}}}}]}"#;
        let objs = parse(text, "x.json", None).unwrap();
        let Object::Vmi(vmi) = &objs[0] else {
            panic!("{objs:?}")
        };
        assert_eq!(
            vmi.spec
                .domain
                .resources
                .requests
                .memory
                .as_ref()
                .unwrap()
                .bytes()
                .unwrap(),
            1 << 30
        );
    }

    #[test]
    fn kind_hint_from_file_name() {
        let text = "items:\n- metadata: {name: ratio}\n  value: \"1.5\"\n";
        let objs = parse(text, "settings.yaml", kind_from_file_name("settings.yaml")).unwrap();
        assert!(
            matches!(&objs[0], Object::HarvesterSetting(s) if s.value.as_deref() == Some("1.5"))
        );
    }

    #[test]
    fn malformed_input_is_a_clear_error() {
        let e = parse(
            "kind: VirtualMachine\nmetadata: [unclosed",
            "bad.yaml",
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("bad.yaml: not valid YAML or JSON (document 1)"),
            "{e}"
        );
        let e = parse("{\"kind\": ", "bad.json", None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("bad.json: not valid YAML or JSON"),
            "{e}"
        );
        let e = parse(
            "kind: VirtualMachine\nmetadata: {name: x}\nspec: {running: maybe}\n",
            "s.yaml",
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("VirtualMachine \"x\" does not have the expected shape"),
            "{e}"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s, "p", None);
        }
    }
}
