//! Prometheus HTTP API v1 answers → series: `{"status":"success","data":{"resultType":"matrix",
//! "result":[{"metric":{...},"values":[[1733561234.5,"123"],...]}]}}` for `query_range`, and
//! `{"status":"error","errorType":"...","error":"..."}` when a query is refused. Bounded: an
//! answer larger than [`MAX_ANSWER_BYTES`] is refused before it is read, and values that are no
//! finite number (`NaN`, `+Inf`) are dropped.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::prom_query::Series;

/// The largest answer read (the client stops reading there too): a week of 5,000 VMs at the
/// tool's step is a few MiB.
pub const MAX_ANSWER_BYTES: usize = 32 << 20;

/// What Prometheus said instead of series.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// `status: error`: the query was refused.
    #[error("{error_type}: {error}")]
    Refused { error_type: String, error: String },
    #[error("the answer is larger than {} MiB", MAX_ANSWER_BYTES >> 20)]
    TooLarge,
    #[error("the answer is no Prometheus API answer: {0}")]
    Malformed(String),
    #[error("the answer is a {0}, not a matrix of series")]
    NotMatrix(String),
}

impl AnswerError {
    /// Whether Prometheus refused the query for asking too many points per series.
    pub fn too_many_points(&self) -> bool {
        match self {
            AnswerError::Refused { error, .. } => {
                error.contains("exceeded maximum resolution") || error.contains("too many samples")
            }
            AnswerError::TooLarge => true,
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct Answer<'a> {
    status: String,
    #[serde(default, borrow)]
    data: Option<Data<'a>>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// The answer's `data`; its `result` is read only once its type is known, straight from the
/// body (no tree of JSON values: 5,000 VMs' week is millions of points, a string each).
#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(borrow)]
    result: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct RawSeries<'a> {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    /// Values are strings ("1.5e9", "NaN"), borrowed from the body (a value with a JSON escape
    /// is no number: the answer is malformed).
    #[serde(default, borrow)]
    values: Vec<(f64, &'a str)>,
    /// An instant query's vector has one `value`.
    #[serde(default, borrow)]
    value: Option<(f64, &'a str)>,
}

fn point((t, v): (f64, &str)) -> Option<(i64, f64)> {
    let v: f64 = v.trim().parse().ok()?;
    (t.is_finite() && v.is_finite()).then_some((t.floor() as i64, v))
}

/// The series of an answer (a `matrix`, or a `vector` of one point each); a refused query is an
/// error with Prometheus's own words.
pub fn series(body: &[u8]) -> Result<Vec<Series>, AnswerError> {
    if body.len() > MAX_ANSWER_BYTES {
        return Err(AnswerError::TooLarge);
    }
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| AnswerError::Malformed(e.to_string()))?;
    if answer.status != "success" {
        return Err(AnswerError::Refused {
            error_type: answer.error_type.unwrap_or_else(|| "unknown".into()),
            error: answer
                .error
                .unwrap_or_else(|| format!("status {}", answer.status)),
        });
    }
    let data = answer
        .data
        .ok_or_else(|| AnswerError::Malformed("a success without data".into()))?;
    if data.result_type != "matrix" && data.result_type != "vector" {
        return Err(AnswerError::NotMatrix(data.result_type));
    }
    let raw: Vec<RawSeries> = match data.result {
        Some(r) => {
            serde_json::from_str(r.get()).map_err(|e| AnswerError::Malformed(e.to_string()))?
        }
        None => return Err(AnswerError::Malformed("a success without a result".into())),
    };
    Ok(raw
        .into_iter()
        .map(|r| {
            let mut points: Vec<(i64, f64)> = r
                .values
                .into_iter()
                .chain(r.value)
                .filter_map(point)
                .collect();
            points.sort_by_key(|p| p.0);
            Series {
                labels: r.metric,
                points,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matrix_becomes_series() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"namespace":"ns","pod":"virt-launcher-a-xxxxx"},
             "values":[[1733561200,"100"],[1733564800.5,"NaN"],[1733561100,"2.5e3"]]},
            {"metric":{},"values":[]}]}}"#;
        let s = series(body).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].label("pod"), Some("virt-launcher-a-xxxxx"));
        assert_eq!(
            s[0].points,
            vec![(1_733_561_100, 2500.0), (1_733_561_200, 100.0)]
        );
        let v = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[10,"1"]}]}}"#;
        assert_eq!(series(v).unwrap()[0].points, vec![(10, 1.0)]);
        // Read straight from the body: an answer without a result, or a value that is no plain
        // string, is malformed, never an empty history.
        for bad in [
            &br#"{"status":"success","data":{"resultType":"matrix"}}"#[..],
            br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"\u0031"]]}]}}"#,
        ] {
            assert!(matches!(series(bad), Err(AnswerError::Malformed(_))), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn refusals_keep_prometheus_s_words() {
        let body = br#"{"status":"error","errorType":"execution","error":"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"}"#;
        let e = series(body).unwrap_err();
        assert!(e.too_many_points(), "{e}");
        assert!(e
            .to_string()
            .starts_with("execution: exceeded maximum resolution"));
        let bad = series(br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#)
            .unwrap_err();
        assert!(!bad.too_many_points());
        assert!(matches!(series(b"<html>"), Err(AnswerError::Malformed(_))));
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#;
        assert_eq!(
            series(scalar).unwrap_err().to_string(),
            "the answer is a scalar, not a matrix of series"
        );
        assert_eq!(
            series(&vec![b' '; MAX_ANSWER_BYTES + 1]),
            Err(AnswerError::TooLarge)
        );
    }
}
