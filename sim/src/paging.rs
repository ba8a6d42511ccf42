//! Lists in pages, as kube-apiserver serves them from etcd: `limit` and `continue`, the
//! `metadata.continue` token (the same encoding as the real server's), `remainingItemCount`,
//! `resourceVersion`/`resourceVersionMatch`, and 410 Expired for a token whose version is no longer
//! readable.
//!
//! Every page of one list comes from the same resourceVersion: the first page keeps a snapshot of
//! the objects (copy on write, see [`Store::snapshot`]) and the token carries its version. Like
//! etcd after compaction, a token older than what the store keeps gets 410 with a fresh token
//! that continues at the newest version (an inconsistent list, as the message says).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::resources::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{in_namespace, Objects, Store};

/// The list parameters that decide which objects and how many.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    /// `limit`; 0 or absent: everything.
    pub limit: usize,
    pub continue_token: Option<String>,
    /// `resourceVersion` as sent (empty: the newest).
    pub resource_version: String,
    /// `resourceVersionMatch`: `Exact`, `NotOlderThan`, or empty.
    pub version_match: String,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    /// The objects as stored (shared, not copied).
    pub items: Vec<Arc<Value>>,
    /// Their store keys.
    pub keys: Vec<String>,
    /// The resourceVersion the whole list is read at.
    pub resource_version: u64,
    /// Where the next page starts; `None` on the last page.
    pub continue_token: Option<String>,
    /// Objects after this page (only when no selector narrows the list, as the real server).
    pub remaining: Option<u64>,
}

/// Why a page cannot be served.
#[derive(Debug, Clone, PartialEq)]
pub enum ListError {
    Api(ApiError),
    /// The token's version is no longer readable: 410 Expired, with a token that continues the
    /// list at the newest version.
    ContinueExpired {
        continue_token: String,
    },
}

impl From<ApiError> for ListError {
    fn from(e: ApiError) -> Self {
        ListError::Api(e)
    }
}

/// The message a real server sends with a 410 for a stale continue token.
pub const INCONSISTENT_CONTINUE: &str = "The provided continue parameter is too old to display a \
    consistent list result. You can start a new list without the continue parameter, or use the \
    continue token in this response to retrieve the remainder of the results. Continuing with the \
    provided token results in an inconsistent list - objects that were created, modified, or \
    deleted between the time the first chunk was returned and now may show up in the list.";

const EXPIRED: &str = "The resourceVersion for the provided list is too old.";

/// kube-apiserver's continue token: base64url (no padding) of this JSON.
#[derive(Debug, Serialize, Deserialize)]
struct Token {
    #[serde(rename = "v")]
    version: String,
    /// The etcd revision the list is read at; -1 continues at the newest.
    rv: i64,
    /// The key to start at, relative to the list's key prefix (`ns/name\0` or `name\0`).
    start: String,
}

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

pub fn encode_token(rv: i64, start: &str) -> String {
    let json = serde_json::to_vec(&Token {
        version: TOKEN_VERSION.to_string(),
        rv,
        start: start.to_string(),
    })
    .unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

fn invalid(why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!(
        "invalid continue token: continue key is not valid: {why}"
    ))
}

/// (start key relative to the prefix, resourceVersion) of a token, checked as the real server
/// checks it (no path tricks to leave the prefix).
fn decode_token(token: &str) -> Result<(String, i64), ApiError> {
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(invalid)?;
    let t: Token = serde_json::from_slice(&bytes).map_err(invalid)?;
    if t.version != TOKEN_VERSION {
        return Err(invalid(format!(
            "server does not recognize this encoded version {:?}",
            t.version
        )));
    }
    if t.rv == 0 {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    if t.start.is_empty() {
        return Err(invalid("encoded start key empty (version meta.k8s.io/v1)"));
    }
    let rooted = format!("/{}", t.start.trim_start_matches('/'));
    let traverses = rooted
        .split('/')
        .skip(1)
        .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if traverses && rooted != "/" {
        return Err(invalid(&t.start));
    }
    Ok((rooted[1..].to_string(), t.rv))
}

impl ListParams {
    pub fn from_query(q: &super::rest::Query) -> Result<ListParams, ApiError> {
        let limit = match q.get("limit").filter(|s| !s.is_empty()) {
            None => 0,
            Some(s) => s
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {s:?}")))?
                .max(0) as usize,
        };
        Ok(ListParams {
            limit,
            continue_token: q
                .get("continue")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            resource_version: q.get("resourceVersion").unwrap_or("").to_string(),
            version_match: q.get("resourceVersionMatch").unwrap_or("").to_string(),
        })
    }
}

fn parse_rv(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s}")))
}

/// What to read, at which version, from which key on.
struct Source {
    objects: Arc<Objects>,
    rv: u64,
    /// Absolute key to start at (inclusive).
    start: Option<String>,
}

fn choose_source(
    store: &mut Store,
    rt: &ResourceType,
    ns: Option<&str>,
    p: &ListParams,
) -> Result<Source, ListError> {
    let prefix = ns.map(|n| format!("{n}/")).unwrap_or_default();
    if let Some(token) = &p.continue_token {
        if !matches!(p.resource_version.as_str(), "" | "0") {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            )
            .into());
        }
        let (start, rv) = decode_token(token)?;
        let start = Some(format!("{prefix}{start}"));
        if rv < 0 {
            return Ok(Source {
                objects: store.snapshot(rt),
                rv: store.resource_version(),
                start,
            });
        }
        return match store.objects_at(rt, rv as u64) {
            Some(objects) => Ok(Source {
                objects,
                rv: rv as u64,
                start,
            }),
            None => {
                let rel = start.as_deref().unwrap_or("")[prefix.len()..].to_string();
                Err(ListError::ContinueExpired {
                    continue_token: encode_token(-1, &rel),
                })
            }
        };
    }
    match (p.resource_version.as_str(), p.version_match.as_str()) {
        ("", "") | ("0", _) => {}
        ("", m) => {
            return Err(ApiError::invalid_list_options(&format!(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided (got {m:?})"
            ))
            .into())
        }
        (rv, m) => {
            let rv = parse_rv(rv)?;
            let current = store.resource_version();
            if rv > current {
                return Err(ApiError::too_large_resource_version(rv, current).into());
            }
            // With a limit and no match (legacy) or Exact: the list as of exactly that version.
            let exact = m == "Exact" || (m.is_empty() && p.limit > 0);
            if exact {
                return match store.objects_at(rt, rv) {
                    Some(objects) => Ok(Source {
                        objects,
                        rv,
                        start: None,
                    }),
                    None => Err(ApiError::list_gone(EXPIRED).into()),
                };
            }
        }
    }
    Ok(Source {
        objects: store.snapshot(rt),
        rv: store.resource_version(),
        start: None,
    })
}

/// One page of the objects of `rt` (in `ns`, or all) that match the selectors.
pub fn list(
    store: &mut Store,
    rt: &ResourceType,
    ns: Option<&str>,
    labels: &LabelSelector,
    fields: &FieldSelector,
    p: &ListParams,
) -> Result<Page, ListError> {
    // resourceVersion=0 is served from the watch cache, which ignores the limit.
    let limit = if p.continue_token.is_none() && p.resource_version == "0" {
        0
    } else {
        p.limit
    };
    let src = choose_source(store, rt, ns, p)?;
    let prefix_len = ns.map_or(0, |n| n.len() + 1);
    let entries = in_namespace(&src.objects, ns)
        .filter(|(k, _)| src.start.as_deref().is_none_or(|s| k.as_str() >= s));
    let mut items = Vec::new();
    let mut keys = Vec::new();
    let mut last_key: Option<&str> = None;
    let mut more = false;
    let mut after = 0u64;
    for (k, v) in entries {
        if limit > 0 && items.len() >= limit {
            more = true;
            if !(labels.is_empty() && fields.is_empty()) {
                break;
            }
            after += 1;
            continue;
        }
        last_key = Some(k);
        if labels.matches(v) && fields.matches(v) {
            items.push(v.clone());
            keys.push(k.clone());
        }
    }
    let continue_token = more.then(|| {
        encode_token(
            src.rv as i64,
            &format!("{}\0", &last_key.unwrap_or("")[prefix_len..]),
        )
    });
    let remaining = (more && labels.is_empty() && fields.is_empty()).then_some(after);
    Ok(Page {
        items,
        keys,
        resource_version: src.rv,
        continue_token,
        remaining,
    })
}

#[cfg(test)]
mod tests;
