//! Which of the APIs we read the server serves (asked, never guessed).

use super::connect::{ConnectError, Connection};

/// The optional APIs found on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Apis {
    /// `kubevirt.io/v1` with virtualmachines.
    pub kubevirt: bool,
    /// `harvesterhci.io/v1beta1` with settings (a Harvester cluster).
    pub harvester_settings: bool,
    /// `instancetype.kubevirt.io/v1beta1` (instance types VMs may take their memory from).
    pub instancetypes: bool,
}

/// Does `group_version` serve `resource`? A 404 means the API is not installed.
async fn serves(
    conn: &Connection,
    group_version: &str,
    resource: &str,
) -> Result<bool, ConnectError> {
    let call = conn.client.list_api_group_resources(group_version);
    let result = match conn.request_timeout {
        Some(t) => tokio::time::timeout(t, call)
            .await
            .map_err(|_| conn.timeout_error())?,
        None => call.await,
    };
    match result {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == resource)),
        // A real server answers an unknown group with a plain-text "404 page not found" (no
        // Status body), so the code decides, not the reason.
        Err(kube::Error::Api(s)) if s.is_not_found() || s.code == 404 => Ok(false),
        Err(e) => Err(conn.request_error(&e)),
    }
}

pub async fn probe(conn: &Connection) -> Result<Apis, ConnectError> {
    let (kubevirt, harvester, instancetypes) = tokio::join!(
        serves(conn, "kubevirt.io/v1", "virtualmachines"),
        serves(conn, "harvesterhci.io/v1beta1", "settings"),
        serves(
            conn,
            "instancetype.kubevirt.io/v1beta1",
            "virtualmachineclusterinstancetypes"
        ),
    );
    Ok(Apis {
        kubevirt: kubevirt?,
        harvester_settings: harvester?,
        instancetypes: instancetypes?,
    })
}
