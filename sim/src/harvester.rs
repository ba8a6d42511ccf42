//! Harvester's VM mutating/validating webhook (harvester/harvester pkg/webhook/resources/
//! virtualmachine/mutator.go and validator.go): guest = limit − reserved,
//! requests from the overcommit setting.

use serde_json::{json, Value};

use crate::keys;
use crate::units::{spell, Exact, MI};
use crate::version::Version;

use super::status::ApiError;

const WEBHOOK: &str = "validator.harvesterhci.io";

/// The Harvester settings the webhook reads.
#[derive(Debug, Clone, PartialEq)]
pub struct HarvesterConfig {
    pub version: Version,
    /// `additional-guest-memory-overhead-ratio` ("" or "0" = off).
    pub ratio: String,
    /// `overcommit-config` memory percentage.
    pub overcommit_memory: i64,
}

fn domain(vm: &Value) -> &Value {
    &vm["spec"]["template"]["spec"]["domain"]
}

fn mem_bytes(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => Exact::parse(s).ok().map(Exact::ceil),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// The fields whose change makes the webhook recompute memory on update.
fn trigger_fields(vm: &Value) -> [Value; 4] {
    let d = domain(vm);
    [
        d["resources"]["limits"]["memory"].clone(),
        vm["metadata"]["annotations"][keys::HARVESTER_RESERVED_MEMORY].clone(),
        d["cpu"]["dedicatedCpuPlacement"].clone(),
        d["devices"]["hostDevices"].clone(),
    ]
}

/// Run the webhook on a VM being created (`old` = None) or updated.
pub fn admit_vm(
    vm: &mut Value,
    old: Option<&Value>,
    cfg: &HarvesterConfig,
) -> Result<(), ApiError> {
    if let Some(old) = old {
        if trigger_fields(old) == trigger_fields(vm) {
            return validate(vm);
        }
    }
    let d = domain(vm);
    let Some(limit) = mem_bytes(&d["resources"]["limits"]["memory"]) else {
        return validate(vm);
    };
    let annotation = vm["metadata"]["annotations"][keys::HARVESTER_RESERVED_MEMORY]
        .as_str()
        .map(str::to_string);
    let reserved = match &annotation {
        Some(a) => {
            let r = Exact::parse(a).map(Exact::ceil).map_err(|e| {
                ApiError::denied(WEBHOOK, &format!("invalid reservedMemory {a:?}: {e}"))
            })?;
            if r < 0 || r >= limit {
                return Err(ApiError::denied(
                    WEBHOOK,
                    &format!(
                        "reservedMemory {a} must be at least 0 and less than the memory limit {}",
                        spell(limit)
                    ),
                ));
            }
            r
        }
        None => {
            let ratio_off = matches!(cfg.ratio.trim(), "" | "0");
            if cfg.version < Version::new(1, 4, 0) || ratio_off {
                100 * MI
            } else {
                0
            }
        }
    };
    let hotplug = vm["metadata"]["annotations"][keys::HARVESTER_HOTPLUG].as_str() == Some("true");
    let has_guest = !d["memory"]["guest"].is_null();
    let dedicated = d["cpu"]["dedicatedCpuPlacement"].as_bool() == Some(true);
    let host_devices = d["devices"]["hostDevices"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    let guest = if hotplug && has_guest {
        mem_bytes(&d["memory"]["guest"]).unwrap_or(limit)
    } else {
        limit - reserved
    };
    if guest < 10 * MI {
        return Err(ApiError::denied(
            WEBHOOK,
            &format!("guest memory {} is less than 10Mi", spell(guest)),
        ));
    }
    let overcommit = cfg.overcommit_memory.max(100);
    let request = if dedicated {
        limit
    } else if host_devices {
        guest
    } else {
        (limit as i128 * 100 / overcommit as i128) as i64 / MI * MI
    };
    let d = &mut vm["spec"]["template"]["spec"]["domain"];
    if !(hotplug && has_guest) {
        d["memory"]["guest"] = json!(spell(guest));
    }
    d["resources"]["requests"]["memory"] = json!(spell(request));
    validate(vm)
}

fn validate(vm: &Value) -> Result<(), ApiError> {
    let d = domain(vm);
    let guest = mem_bytes(&d["memory"]["guest"]);
    let limit = mem_bytes(&d["resources"]["limits"]["memory"]);
    // A VM with `spec.instancetype` gets its memory from the instance type when KubeVirt builds
    // its VMI (KubeVirt's admission rejects memory in such a template): the simulator lets it
    // through; Harvester's own handling of instance types is not modelled.
    let instancetype = !vm["spec"]["instancetype"]["name"].is_null();
    if guest.is_none() && limit.is_none() && !instancetype {
        return Err(ApiError::denied(
            WEBHOOK,
            "either memory.guest or resources.limits.memory must be set",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(limit: &str, annotation: Option<&str>) -> Value {
        let mut v = json!({"metadata": {"name": "vm", "annotations": {}}, "spec": {"template": {"spec": {"domain": {
            "resources": {"limits": {"memory": limit, "cpu": "2"}}}}}}});
        if let Some(a) = annotation {
            v["metadata"]["annotations"][keys::HARVESTER_RESERVED_MEMORY] = json!(a);
        }
        v
    }

    fn cfg(version: Version, ratio: &str) -> HarvesterConfig {
        HarvesterConfig {
            version,
            ratio: ratio.into(),
            overcommit_memory: 150,
        }
    }

    #[test]
    fn seed_vm_on_harvester_1_3_reserves_100mi() {
        let mut v = vm("2Gi", None);
        admit_vm(&mut v, None, &cfg(Version::new(1, 3, 0), "")).unwrap();
        assert_eq!(domain(&v)["memory"]["guest"], "1948Mi");
        assert_eq!(domain(&v)["resources"]["requests"]["memory"], "1365Mi");
    }

    #[test]
    fn ratio_on_1_4_means_no_reservation_and_annotation_wins() {
        let mut v = vm("4Gi", None);
        admit_vm(&mut v, None, &cfg(Version::new(1, 4, 1), "1.5")).unwrap();
        assert_eq!(domain(&v)["memory"]["guest"], "4Gi");
        let mut v = vm("4Gi", Some("512Mi"));
        admit_vm(&mut v, None, &cfg(Version::new(1, 4, 1), "1.5")).unwrap();
        assert_eq!(domain(&v)["memory"]["guest"], "3584Mi");
        let mut v = vm("4Gi", None);
        admit_vm(&mut v, None, &cfg(Version::new(1, 4, 1), "0")).unwrap();
        assert_eq!(domain(&v)["memory"]["guest"], "3996Mi");
    }

    #[test]
    fn update_recomputes_only_when_inputs_change() {
        let c = cfg(Version::new(1, 4, 1), "1.5");
        let mut old = vm("4Gi", None);
        admit_vm(&mut old, None, &c).unwrap();
        let mut same = old.clone();
        same["spec"]["template"]["spec"]["domain"]["memory"]["guest"] = json!("1Gi");
        admit_vm(&mut same, Some(&old), &c).unwrap();
        assert_eq!(
            domain(&same)["memory"]["guest"],
            "1Gi",
            "unrelated update keeps guest"
        );
        let mut annotated = old.clone();
        annotated["metadata"]["annotations"][keys::HARVESTER_RESERVED_MEMORY] = json!("1Gi");
        admit_vm(&mut annotated, Some(&old), &c).unwrap();
        assert_eq!(domain(&annotated)["memory"]["guest"], "3Gi");
    }

    #[test]
    fn rejects_bad_reservations() {
        let c = cfg(Version::new(1, 4, 1), "1.5");
        assert_eq!(
            admit_vm(&mut vm("2Gi", Some("2Gi")), None, &c)
                .unwrap_err()
                .code,
            400
        );
        assert!(admit_vm(&mut vm("2Gi", Some("lots")), None, &c).is_err());
        assert!(
            admit_vm(&mut vm("2Gi", Some("2045Mi")), None, &c).is_err(),
            "guest under 10Mi"
        );
    }
}
