//! Request routing for everything but exec: discovery, the verbs on resources, KubeVirt's
//! subresources, authentication and authorization.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::auth::Tokens;
use super::ops::{self, PatchType, Target};
use super::paging::{self, ListError, ListParams};
use super::requests::RequestKind;
use super::resources::{self, ResourceType, SUBRESOURCES_GROUP};
use super::selector::{FieldSelector, LabelSelector};
use super::server::{error_response, json_response, App};
use super::status::{self, ApiError};
use super::table;

/// Decoded query parameters.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        Query(
            q.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | ""))
    }
}

/// The user a request acts as: a request without a bearer token this simulator issued is
/// unauthorized (401); with one, `Impersonate-User` (as `--as` sends) names the user acted as,
/// else the token's user.
pub fn user_of(tokens: &Tokens, headers: &HeaderMap) -> Result<String, ApiError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
    };
    let user = tokens
        .user_for_header(header("authorization"))
        .ok_or_else(ApiError::unauthorized)?;
    Ok(header("impersonate-user").map_or(user, str::to_string))
}

pub async fn handle(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match dispatch(&app, &method, &uri, &headers, &body) {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn ok(v: Value) -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, &v))
}

fn dispatch(
    app: &App,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let path = uri.path().trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(kind) = non_resource_kind(&segs) {
        app.requests.count(kind);
    }
    if matches!(path, "/healthz" | "/livez" | "/readyz") {
        return Ok((StatusCode::OK, "ok").into_response());
    }
    let user = user_of(&app.tokens, headers)?;
    let q = Query::parse(uri.query());
    let harvester = app.world().config.harvester.is_some();
    match segs.as_slice() {
        ["version"] => ok(version(app)),
        ["api"] => ok(resources::api_versions(&app.addr.to_string())),
        ["apis"] => ok(resources::api_group_list(harvester)),
        ["api", "v1"] => resources::resource_list("", "v1", harvester)
            .map(ok)
            .unwrap_or_else(|| Err(ApiError::path_not_found())),
        ["apis", g] => Ok(resources::api_group(g, harvester)
            .map(|v| ok(v).unwrap_or_else(|e| super::server::error_response(&e)))
            .unwrap_or_else(page_not_found)),
        ["apis", SUBRESOURCES_GROUP, "v1", "version"] => ok(kubevirt_version(app)),
        ["openapi", "v3"] => ok(super::openapi::root(harvester)),
        ["api", "v1", "nodes", node, "proxy", "stats", "summary"] if method == Method::GET => {
            app.requests
                .access("get", "", "nodes/proxy", None, Some(node));
            let w = app.world();
            w.auth
                .check(&user, "get", &resources::NODES, Some("proxy"), None)?;
            super::summary::summary(&w, node).and_then(ok)
        }
        ["openapi", "v3", gv @ ..] => super::openapi::group_version(&gv.join("/"), harvester)
            .map(ok)
            .unwrap_or_else(|| Err(ApiError::path_not_found())),
        ["apis", g, v] => Ok(resources::resource_list(g, v, harvester)
            .map(|l| ok(l).unwrap_or_else(|e| super::server::error_response(&e)))
            .unwrap_or_else(page_not_found)),
        ["apis", SUBRESOURCES_GROUP, "v1", "namespaces", ns, "virtualmachines", name, action] => {
            kubevirt_action(app, &user, method, ns, name, action)
        }
        ["api", "v1", rest @ ..] => resource(
            app, &user, method, headers, &q, body, "", "v1", rest, harvester,
        ),
        ["apis", g, v, rest @ ..] => {
            resource(app, &user, method, headers, &q, body, g, v, rest, harvester)
        }
        _ => Err(ApiError::path_not_found()),
    }
}

/// The kind of a request that is not a verb on a resource (those are counted by verb).
fn non_resource_kind(segs: &[&str]) -> Option<RequestKind> {
    match segs {
        ["version"] | ["api"] | ["apis"] | ["api", "v1"] | ["apis", _] | ["apis", _, _] => {
            Some(RequestKind::Discovery)
        }
        ["openapi", ..] | ["apis", SUBRESOURCES_GROUP, "v1", "version"] => {
            Some(RequestKind::Discovery)
        }
        ["api", "v1", "nodes", _, "proxy", ..]
        | ["apis", SUBRESOURCES_GROUP, "v1", "namespaces", _, "virtualmachines", _, _] => {
            Some(RequestKind::Subresource)
        }
        ["api", "v1", ..] | ["apis", _, _, ..] => None,
        _ => Some(RequestKind::Other),
    }
}

/// What a real kube-apiserver answers for an API group or version it does not serve: plain
/// text, no `Status` body (clients must go by the code).
fn page_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
        .into_response()
}

fn version(app: &App) -> Value {
    let v = app.world().config.kubernetes_version.clone();
    let core = v.trim_start_matches('v');
    let mut parts = core.split(['.', '+', '-']);
    json!({"major": parts.next().unwrap_or("1"), "minor": parts.next().unwrap_or("29"), "gitVersion": v,
           "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
           "buildDate": "2024-09-12T00:00:00Z", "goVersion": "go1.22.6", "compiler": "gc", "platform": "linux/amd64"})
}

fn kubevirt_version(app: &App) -> Value {
    let v = app.world().config.version.to_string();
    json!({"gitVersion": v, "gitCommit": "0000000", "gitTreeState": "clean", "buildDate": "2024-07-01T00:00:00Z",
           "goVersion": "go1.22.4", "compiler": "gc", "platform": "linux/amd64"})
}

fn kubevirt_action(
    app: &App,
    user: &str,
    method: &Method,
    ns: &str,
    name: &str,
    action: &str,
) -> Result<Response, ApiError> {
    if method != Method::PUT {
        return Err(ApiError::method_not_allowed());
    }
    app.requests.access(
        "update",
        SUBRESOURCES_GROUP,
        &format!("virtualmachines/{action}"),
        Some(ns),
        Some(name),
    );
    let mut w = app.world();
    w.auth.check(
        user,
        "update",
        &resources::VIRTUAL_MACHINES,
        Some(action),
        Some(ns),
    )?;
    match action {
        "restart" => super::kubevirt::restart(&mut w, ns, name)?,
        "start" => super::kubevirt::set_running(&mut w, ns, name, true)?,
        "stop" => super::kubevirt::set_running(&mut w, ns, name, false)?,
        _ => return Err(ApiError::path_not_found()),
    }
    Ok((StatusCode::ACCEPTED, "").into_response())
}

fn parse_target(
    group: &str,
    version: &str,
    rest: &[&str],
    harvester: bool,
) -> Result<Target, ApiError> {
    let find = |plural: &str| {
        resources::find(group, version, plural, harvester).ok_or_else(ApiError::path_not_found)
    };
    let owned = |s: Option<&&str>| s.map(|x| x.to_string());
    match rest {
        ["namespaces", ns, plural, tail @ ..]
            if resources::find(group, version, plural, harvester).is_some_and(|r| r.namespaced) =>
        {
            if tail.len() > 2 {
                return Err(ApiError::path_not_found());
            }
            Ok(Target {
                rt: find(plural)?,
                ns: Some(ns.to_string()),
                name: owned(tail.first()),
                sub: owned(tail.get(1)),
            })
        }
        [plural, tail @ ..] if tail.len() <= 2 => {
            let rt = find(plural)?;
            if rt.namespaced && !tail.is_empty() {
                return Err(ApiError::path_not_found());
            }
            Ok(Target {
                rt,
                ns: None,
                name: owned(tail.first()),
                sub: owned(tail.get(1)),
            })
        }
        _ => Err(ApiError::path_not_found()),
    }
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .next()
                .is_some_and(|first| first.contains("as=Table"))
        })
}

fn now_epoch(app: &App) -> i64 {
    let wall = app.world().clock.wall();
    wall.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn list_value(rt: &ResourceType, items: Vec<Value>, rv: u64) -> Value {
    json!({"kind": rt.list_kind(), "apiVersion": rt.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": items})
}

/// A list answer from objects already encoded: `{"apiVersion", "kind", "metadata", "items"}`.
fn list_response(rt: &ResourceType, meta: &Value, items: &[Bytes]) -> Response {
    let size: usize = items.iter().map(|b| b.len() + 1).sum();
    let mut body = Vec::with_capacity(size + 256);
    body.extend_from_slice(b"{\"apiVersion\":");
    body.extend_from_slice(json!(rt.api_version()).to_string().as_bytes());
    body.extend_from_slice(b",\"kind\":");
    body.extend_from_slice(json!(rt.list_kind()).to_string().as_bytes());
    body.extend_from_slice(b",\"metadata\":");
    body.extend_from_slice(meta.to_string().as_bytes());
    body.extend_from_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.extend_from_slice(b"]}");
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// A verb on a resource, routed: the target, its selectors and how to answer.
struct VerbRequest<'a> {
    app: &'a App,
    t: Target,
    q: &'a Query,
    headers: &'a HeaderMap,
    body: &'a [u8],
    labels: LabelSelector,
    fields: FieldSelector,
    dry_run: bool,
    /// Answer with a `meta.k8s.io/v1` Table (`kubectl get`).
    table: bool,
}

#[allow(clippy::too_many_arguments)]
fn resource(
    app: &App,
    user: &str,
    method: &Method,
    headers: &HeaderMap,
    q: &Query,
    body: &[u8],
    group: &str,
    version: &str,
    rest: &[&str],
    harvester: bool,
) -> Result<Response, ApiError> {
    let t = parse_target(group, version, rest, harvester)?;
    if let Some(sub) = &t.sub {
        if !t.rt.subresources.contains(&sub.as_str()) || sub == "exec" {
            return Err(ApiError::path_not_found());
        }
    }
    let req = VerbRequest {
        app,
        labels: LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?,
        fields: FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))?,
        dry_run: q.get("dryRun").is_some_and(|d| !d.is_empty()),
        table: wants_table(headers),
        t,
        q,
        headers,
        body,
    };
    let verb = verb_of(method, &req)?;
    app.requests.count(RequestKind::of_verb(verb));
    let t = &req.t;
    let resource = match &t.sub {
        Some(sub) => format!("{}/{sub}", t.rt.plural),
        None => t.rt.plural.to_string(),
    };
    let name = t
        .name
        .clone()
        .or_else(|| req.fields.name().map(str::to_string));
    app.requests.access(
        verb,
        t.rt.group,
        &resource,
        t.ns.as_deref(),
        name.as_deref(),
    );
    app.world()
        .auth
        .check(user, verb, t.rt, t.sub.as_deref(), t.ns.as_deref())
        .map_err(|e| e.named(t.name.as_deref()))?;
    match verb {
        "watch" => watch(req),
        "list" => list(req),
        "get" => get(req),
        "create" => {
            let obj = ops::create(&mut app.world(), t, req.parse_body()?, req.dry_run)?;
            Ok(json_response(StatusCode::CREATED, &obj))
        }
        "update" => ok(ops::update(
            &mut app.world(),
            t,
            req.parse_body()?,
            req.dry_run,
        )?),
        "patch" => patch(req),
        "delete" => ok(ops::delete(&mut app.world(), t, req.dry_run)?),
        "deletecollection" => delete_collection(req),
        _ => ok(status::success()),
    }
}

/// The Kubernetes verb of a request: by method, and whether it names an object.
fn verb_of(method: &Method, req: &VerbRequest) -> Result<&'static str, ApiError> {
    let q = req.q;
    Ok(match (method, req.t.name.is_some()) {
        (&Method::GET, false) if q.flag("watch") && q.get("watch").is_some() => "watch",
        (&Method::GET, false) => "list",
        (&Method::GET, true) => "get",
        (&Method::POST, false) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => return Err(ApiError::method_not_allowed()),
    })
}

impl VerbRequest<'_> {
    fn parse_body(&self) -> Result<Value, ApiError> {
        serde_json::from_slice::<Value>(self.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))
    }
}

fn watch(req: VerbRequest) -> Result<Response, ApiError> {
    let q = req.q;
    let rv = q
        .get("resourceVersion")
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {s:?}")))
        })
        .transpose()?;
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1800);
    let watch = super::watch::WatchRequest {
        rt: req.t.rt,
        ns: req.t.ns.clone(),
        labels: req.labels,
        fields: req.fields,
        rv: rv.filter(|&r| r != 0),
        timeout_secs: timeout,
        bookmarks: q.flag("allowWatchBookmarks"),
        as_table: req.table,
    };
    Ok(super::watch::watch(req.app, watch))
}

fn list(req: VerbRequest) -> Result<Response, ApiError> {
    let (app, t) = (req.app, &req.t);
    let params = ListParams::from_query(req.q)?;
    let mut w = app.world();
    let listed = paging::list(
        &mut w.store,
        t.rt,
        t.ns.as_deref(),
        &req.labels,
        &req.fields,
        &params,
    );
    let page = match listed {
        Ok(page) => page,
        Err(ListError::Api(e)) => return Err(e),
        Err(ListError::ContinueExpired { continue_token }) => {
            let mut body = ApiError::expired(paging::INCONSISTENT_CONTINUE).body();
            body["metadata"]["continue"] = json!(continue_token);
            return Ok(json_response(StatusCode::GONE, &body));
        }
    };
    app.requests.count_listed(page.items.len());
    let mut meta = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(c) = &page.continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(n) = page.remaining {
        meta["remainingItemCount"] = json!(n);
    }
    if req.table {
        drop(w);
        let items: Vec<Value> = page.items.iter().map(|o| (**o).clone()).collect();
        let mut v = table::table(t.rt, &items, page.resource_version, now_epoch(app));
        v["metadata"] = meta;
        return ok(v);
    }
    let encoded: Vec<Bytes> = page
        .keys
        .iter()
        .zip(&page.items)
        .map(|(k, o)| w.store.encoded(t.rt, k, o))
        .collect();
    drop(w);
    Ok(list_response(t.rt, &meta, &encoded))
}

fn get(req: VerbRequest) -> Result<Response, ApiError> {
    let obj = ops::get(&req.app.world(), &req.t)?;
    if !req.table {
        return ok(obj);
    }
    let rv = obj["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    ok(table::table(req.t.rt, &[obj], rv, now_epoch(req.app)))
}

fn patch(req: VerbRequest) -> Result<Response, ApiError> {
    let ct = req
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let kind = PatchType::from_content_type(ct)?;
    ok(ops::patch(
        &mut req.app.world(),
        &req.t,
        kind,
        req.body,
        req.dry_run,
    )?)
}

fn delete_collection(req: VerbRequest) -> Result<Response, ApiError> {
    let (app, t) = (req.app, &req.t);
    let items = ops::delete_collection(
        &mut app.world(),
        t.rt,
        t.ns.as_deref(),
        &req.labels,
        &req.fields,
    )?;
    let rv = app.world().store.resource_version();
    ok(list_value(t.rt, items, rv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some(
            "labelSelector=kubevirt.io%3Dvirt-launcher%2Ctier+in+(a)&watch=1&command=sh&command=-c",
        ));
        assert_eq!(
            q.get("labelSelector"),
            Some("kubevirt.io=virt-launcher,tier in (a)")
        );
        assert!(q.flag("watch"));
        assert_eq!(q.all("command"), vec!["sh", "-c"]);
        assert_eq!(Query::parse(Some("a=%zz%4")).get("a"), Some("%zz%4"));
    }

    #[test]
    fn targets() {
        let t = parse_target(
            "kubevirt.io",
            "v1",
            &["namespaces", "ns", "virtualmachines", "vm", "status"],
            false,
        )
        .unwrap();
        assert_eq!(
            (t.ns.as_deref(), t.name.as_deref(), t.sub.as_deref()),
            (Some("ns"), Some("vm"), Some("status"))
        );
        let t = parse_target("", "v1", &["namespaces", "ns"], false).unwrap();
        assert_eq!(t.rt.plural, "namespaces");
        assert_eq!(t.name.as_deref(), Some("ns"));
        let t = parse_target("", "v1", &["pods"], false).unwrap();
        assert!(t.ns.is_none() && t.name.is_none());
        assert!(parse_target("", "v1", &["pods", "x"], false).is_err());
        assert!(parse_target("", "v1", &["widgets"], false).is_err());
    }
}
