//! `fix`'s evidence for one VM: its objects, then (unless `--live off`) ONE reading round of its
//! node — the probe of its pod and the node's kernel log through the same agent — so the plan
//! starts from what `list` shows for it.

use std::sync::Arc;

use super::inputs::absorb_round;
use super::options::Options;
use crate::fix::{read_objects, Evidence, Target};
use crate::model::inventory::Readings;
use crate::model::objects::VirtualMachine;
use crate::node::readers::Mode;

/// The VM `namespace/name` with what is known about it live, the evidence it was judged from
/// (to plan again from after a conflict), and the remarks of that reading (a node that could
/// not be read, agents of earlier runs deleted).
pub async fn fix_target(
    opts: &Options,
    conn: &crate::cluster::connect::Connection,
    namespace: &str,
    name: &str,
) -> anyhow::Result<(Target, Evidence, Vec<String>)> {
    let (client, server) = (&conn.client, conn.server.as_str());
    let objects = read_objects(client, namespace, name).await?;
    let mut inventory = objects.inventory;
    // The VM itself, so the kernel log's kills map to it.
    if let Ok(vm) = serde_json::from_value::<VirtualMachine>(objects.vm.clone()) {
        inventory.vms.push(Arc::new(vm));
    }
    let mut options = opts.report_options();
    // The peaks this machine remembers for the VM count as evidence here too, and its pods
    // remembered map the kernel log's kills in pods now gone.
    let (mut keeper, store_warnings) = super::peaks::keeper_for(opts, server);
    let remembered = keeper.remembered_pods();
    let (readings, warnings) = if opts.live == Mode::Off {
        (Readings::new(), Vec::new())
    } else {
        // An interrupt (or agent flags that cannot be used) ends the command here, with the
        // agents deleted; a node that cannot be read is only a warning.
        match super::readings::one_round(opts, client.clone(), &inventory).await {
            Ok(round) => absorb_round(round, &inventory, &mut options, &remembered),
            Err(e) if e.is::<super::readings::Interrupted>() => return Err(e),
            // The plan still stands on the VM's spec; say why it has no live evidence.
            Err(e) => (
                Readings::new(),
                vec![format!("no live data for the plan: {e:#}")],
            ),
        }
    };
    let now = super::peaks::unix_now();
    options.peaks = keeper.for_report(now);
    let mut warnings = warnings;
    warnings.extend(store_warnings);
    // The VM's history from Prometheus is evidence here as in `list` (its failures are said).
    let scoped = opts.with_namespace(Some(namespace));
    let history = super::prometheus::load(&scoped, conn, &inventory, now).await;
    history.apply(&mut options);
    warnings.extend(history.warnings);
    let target = Target::new(objects.vm, &inventory, &readings, &options)?;
    Ok((target, Evidence { readings, options }, warnings))
}
