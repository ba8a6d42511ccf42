//! Helpers shared by the integration tests (`mod common;` in each test crate): the
//! simulator's, and the real kube-apiserver harness in `apiserver`.
#![allow(dead_code)]

pub mod apiserver;

use std::time::Duration;

use kube::api::{ApiResource, GroupVersionKind};
use vmmem::sim::{Scenario, Sim, SimHandle, SimOptions};

pub fn vm_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachine"),
        "virtualmachines",
    )
}

pub fn vmi_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachineInstance"),
        "virtualmachineinstances",
    )
}

pub async fn demo() -> SimHandle {
    let opts = SimOptions {
        pod_start_delay: Duration::from_millis(100),
        ..SimOptions::default()
    };
    Sim::start(Scenario::demo().unwrap(), opts).await.unwrap()
}

pub fn api_code(e: &kube::Error) -> Option<(u16, String, String)> {
    match e {
        kube::Error::Api(s) => Some((s.code, s.reason.clone(), s.message.clone())),
        _ => None,
    }
}
