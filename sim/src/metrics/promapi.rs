//! Prometheus' HTTP query API (v1) over the simulated history: `GET api/v1/query_range` and
//! `api/v1/query`, answering like Prometheus 2.x: `{"status":"success","data":{"resultType":
//! "matrix"|"vector","result":[…]}}`, and for a refused request HTTP 400 with
//! `{"status":"error","errorType":"bad_data","error":…}` — including Prometheus' own text for a
//! range of more than 11,000 points per series.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::history;
use crate::clock::parse_rfc3339;
use crate::promql::{self, format_value, Row};
use crate::rest::Query;
use crate::server::json_response;
use crate::world::World;

/// Prometheus' limit on the points of one series in a range query.
pub const MAX_POINTS: i64 = 11_000;

fn bad_data(error: impl Into<String>) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"status": "error", "errorType": "bad_data", "error": error.into()}),
    )
}

/// A time parameter: unix seconds (fractions allowed) or RFC 3339.
fn time_param(v: &str) -> Option<i64> {
    v.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(|f| f.floor() as i64)
        .or_else(|| parse_rfc3339(v))
}

/// A step: seconds (fractions allowed) or a Prometheus duration.
fn step_param(v: &str) -> Option<f64> {
    v.parse::<f64>()
        .ok()
        .or_else(|| promql::parse_duration(v).map(|s| s as f64))
}

/// A timestamp as Prometheus writes it: a number of seconds.
fn stamp(t: i64) -> Value {
    json!(t)
}

fn matrix(rows: Vec<Row>) -> Value {
    let result: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let values: Vec<Value> = r
                .points
                .iter()
                .map(|(t, v)| json!([stamp(*t), format_value(*v)]))
                .collect();
            json!({"metric": r.labels, "values": values})
        })
        .collect();
    json!({"status": "success", "data": {"resultType": "matrix", "result": result}})
}

fn vector(rows: Vec<Row>) -> Value {
    let result: Vec<Value> = rows
        .into_iter()
        .filter_map(|r| {
            let (t, v) = *r.points.last()?;
            Some(json!({"metric": r.labels, "value": [stamp(t), format_value(v)]}))
        })
        .collect();
    json!({"status": "success", "data": {"resultType": "vector", "result": result}})
}

fn now_unix(w: &World) -> i64 {
    w.clock
        .wall()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Answer `path` (below the service proxy) with the URL query `query`.
pub fn answer(w: &World, path: &str, query: Option<&str>) -> Response {
    let q = Query::parse(query);
    let param = |k: &str| q.get(k).map(str::to_string);
    let Some(text) = param("query") else {
        return bad_data("invalid parameter \"query\": query must not be empty");
    };
    match path.trim_end_matches('/') {
        "api/v1/query_range" => {
            let (Some(start), Some(end)) = (
                param("start").as_deref().and_then(time_param),
                param("end").as_deref().and_then(time_param),
            ) else {
                return bad_data(
                    "invalid parameter \"start\" or \"end\": cannot parse to a valid timestamp",
                );
            };
            let Some(step) = param("step").as_deref().and_then(step_param) else {
                return bad_data("invalid parameter \"step\": cannot parse to a valid duration");
            };
            if end < start {
                return bad_data(
                    "invalid parameter \"end\": end timestamp must not be before start time",
                );
            }
            if step <= 0.0 {
                return bad_data("zero or negative query resolution step widths are not accepted. Try a positive integer");
            }
            if (end - start) as f64 / step > MAX_POINTS as f64 {
                return bad_data("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)");
            }
            let parsed = match promql::parse(&text) {
                Ok(p) => p,
                Err(e) => return bad_data(format!("invalid parameter \"query\": {}", e.0)),
            };
            let step = (step.ceil() as i64).max(1);
            let series = history::series(w, &parsed.metric, start - parsed.reach(), end);
            json_response(
                StatusCode::OK,
                &matrix(parsed.evaluate(&series, start, end, step)),
            )
        }
        "api/v1/query" => {
            let Some(time) = param("time").map_or(Some(now_unix(w)), |t| time_param(&t)) else {
                return bad_data("invalid parameter \"time\": cannot parse to a valid timestamp");
            };
            let parsed = match promql::parse(&text) {
                Ok(p) => p,
                Err(e) => return bad_data(format!("invalid parameter \"query\": {}", e.0)),
            };
            let series = history::series(w, &parsed.metric, time - parsed.reach(), time);
            json_response(
                StatusCode::OK,
                &vector(parsed.evaluate(&series, time, time, 1)),
            )
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"status": "error", "errorType": "not_found", "error": format!("no API endpoint at /{path}")}),
        ),
    }
}
