//! One-shot reads: every object of a resource, listed page by page into the lean type, for
//! readers that take one snapshot and keep no watch (`list`). Pages hold 500 objects, as
//! kubectl's and kube-rs's watcher's do, so no response holds a whole large cluster.

use std::sync::Arc;

use kube::api::ListParams;
use kube::Api;

use super::lean::{Kind, Lean};

/// Objects per page.
pub const PAGE_SIZE: u32 = 500;

/// How often a list whose continue token expired (410) starts over before giving up.
const RESTARTS: usize = 3;

/// Every object of `api` that matches `labels` (and is named `name`), and how many pages it took. When the server
/// expired the continue token between pages (410), the list starts over, as kube-apiserver
/// advises, so what is returned is one consistent version.
pub async fn list_all<T: Kind>(
    api: &Api<Lean<T>>,
    labels: Option<&str>,
    name: Option<&str>,
) -> Result<(Vec<Arc<T>>, usize), kube::Error> {
    let mut first = ListParams::default().limit(PAGE_SIZE);
    if let Some(l) = labels {
        first = first.labels(l);
    }
    if let Some(n) = name {
        first = first.fields(&format!("metadata.name={n}"));
    }
    let mut restarts = 0;
    let mut pages = 0;
    'list: loop {
        let mut out: Vec<Arc<T>> = Vec::new();
        let mut lp = first.clone();
        loop {
            let page = match api.list(&lp).await {
                Ok(p) => p,
                Err(kube::Error::Api(s))
                    if s.code == 410 && lp.continue_token.is_some() && restarts < RESTARTS =>
                {
                    restarts += 1;
                    continue 'list;
                }
                Err(e) => return Err(e),
            };
            pages += 1;
            let remaining = page
                .metadata
                .remaining_item_count
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0);
            out.reserve_exact(page.items.len() + remaining);
            out.extend(page.items.into_iter().map(|l| l.obj));
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => lp.continue_token = Some(token),
                None => {
                    out.shrink_to_fit();
                    return Ok((out, pages));
                }
            }
        }
    }
}
