//! The small part of PromQL the simulated Prometheus answers (issue 20's contract), parsed and
//! evaluated the way Prometheus 2.x does it:
//!
//! `max by (LABELS) (FUNC(METRIC{MATCHERS}[RANGE]))` with FUNC one of `max_over_time`,
//! `min_over_time`, `increase`, or `max by (LABELS) (METRIC{MATCHERS})`; matchers `=`, `!=`, `=~`,
//! `!~` (regular expressions anchored at both ends, as Prometheus anchors its RE2 ones).
//! Anything else is refused with "unsupported query: …".
//!
//! Evaluation: a range selector takes the samples in `[t - RANGE, t]` (both ends, Prometheus 2),
//! an instant selector the newest sample in the 5 minutes up to `t` (the default lookback);
//! `increase` extrapolates to the range's ends like Prometheus' `extrapolatedRate`; `max by` keeps
//! only the named labels (empty ones dropped) and the metric name goes.

use std::collections::BTreeMap;

use regex::Regex;

/// Labels of a series.
pub type Labels = BTreeMap<String, String>;

/// One series: its labels (with `__name__`) and samples `(unix seconds, value)` in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    MaxOverTime,
    MinOverTime,
    Increase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

impl Matcher {
    pub fn matches(&self, v: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(v),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(v),
            _ => false,
        }
    }
}

/// A parsed query of the supported shape.
#[derive(Debug, Clone)]
pub struct Query {
    pub by: Vec<String>,
    /// The function and its range in seconds; `None`: an instant selector.
    pub func: Option<(Func, i64)>,
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

/// Prometheus' default lookback for instant selectors.
pub const LOOKBACK_SECONDS: i64 = 300;

/// Why a query is refused (the `error` of a `bad_data` answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        while self.s[self.at..].starts_with(char::is_whitespace) {
            self.at += self.s[self.at..].chars().next().map_or(1, char::len_utf8);
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.s[self.at..].starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), String> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(format!("expected {token:?} at position {}", self.at))
        }
    }

    /// A metric or label name (`[a-zA-Z_:][a-zA-Z0-9_:]*`; labels take no colon, checked by caller).
    fn ident(&mut self) -> Result<&'a str, String> {
        self.skip_ws();
        let rest = &self.s[self.at..];
        let len = rest
            .char_indices()
            .find(|&(i, c)| {
                !(c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()))
            })
            .map_or(rest.len(), |(i, _)| i);
        if len == 0 {
            return Err(format!("expected a name at position {}", self.at));
        }
        self.at += len;
        Ok(&rest[..len])
    }

    /// A double-quoted string with Go-style escapes (`\"`, `\\`, `\n`, `\t`).
    fn string(&mut self) -> Result<String, String> {
        self.skip_ws();
        let mut chars = self.s[self.at..].char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(format!("expected a quoted string at position {}", self.at));
        }
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(c @ ('"' | '\\')) => out.push(c),
                    // RE2 escapes such as `\.` stay for the regular expression
                    Some(c) => {
                        out.push('\\');
                        out.push(c);
                    }
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err("unterminated string".into())
    }

    fn done(&mut self) -> bool {
        self.skip_ws();
        self.at == self.s.len()
    }
}

/// A Prometheus duration (`5m`, `1h30m`, `300s`, `1d`, `1w`, `500ms` rounds down) in seconds.
pub fn parse_duration(d: &str) -> Option<i64> {
    let mut total_ms: i64 = 0;
    let mut rest = d;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h", "d", "w", "y"]
            .into_iter()
            .find(|u| rest.starts_with(u))?;
        let ms = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => 31_536_000_000,
        };
        total_ms = total_ms.checked_add(n.checked_mul(ms)?)?;
        rest = &rest[unit.len()..];
    }
    (total_ms > 0).then_some(total_ms / 1000)
}

fn selector(c: &mut Cursor) -> Result<(String, Vec<Matcher>), String> {
    let metric = c.ident()?.to_string();
    let mut matchers = Vec::new();
    if c.eat("{") {
        while !c.eat("}") {
            let name = c.ident()?.to_string();
            let op = if c.eat("=~") {
                MatchOp::Regex
            } else if c.eat("!~") {
                MatchOp::NotRegex
            } else if c.eat("!=") {
                MatchOp::NotEqual
            } else if c.eat("=") {
                MatchOp::Equal
            } else {
                return Err(format!("expected a matcher operator after {name}"));
            };
            let value = c.string()?;
            let re = match op {
                MatchOp::Regex | MatchOp::NotRegex => Some(
                    Regex::new(&format!("^(?:{value})$"))
                        .map_err(|e| format!("invalid regular expression {value:?}: {e}"))?,
                ),
                _ => None,
            };
            matchers.push(Matcher {
                name,
                op,
                value,
                re,
            });
            if !c.eat(",") {
                c.expect("}")?;
                break;
            }
        }
    }
    Ok((metric, matchers))
}

/// Parse `q`; anything outside the contract's shapes is [`Unsupported`].
pub fn parse(q: &str) -> Result<Query, Unsupported> {
    let mut c = Cursor { s: q, at: 0 };
    let why = |e: String| Unsupported(format!("unsupported query: {e}: {q}"));
    let head = (|| {
        if c.ident()? != "max" {
            return Err("only max by (…) (…) is served".to_string());
        }
        if c.ident()? != "by" {
            return Err("only max by (…) (…) is served".to_string());
        }
        c.expect("(")?;
        let mut by = Vec::new();
        while !c.eat(")") {
            by.push(c.ident()?.to_string());
            if !c.eat(",") {
                c.expect(")")?;
                break;
            }
        }
        c.expect("(")?;
        Ok(by)
    })();
    let by = head.map_err(why)?;
    let body = (|| {
        let save = c.at;
        let name = c.ident()?;
        let func = match name {
            "max_over_time" => Some(Func::MaxOverTime),
            "min_over_time" => Some(Func::MinOverTime),
            "increase" => Some(Func::Increase),
            _ => None,
        };
        let (func, metric, matchers) = match func {
            Some(f) if c.eat("(") => {
                let (metric, matchers) = selector(&mut c)?;
                c.expect("[")?;
                let end = c.s[c.at..].find(']').ok_or("expected ]")? + c.at;
                let range = parse_duration(c.s[c.at..end].trim())
                    .ok_or_else(|| format!("bad range {:?}", &c.s[c.at..end]))?;
                c.at = end + 1;
                c.expect(")")?;
                (Some((f, range)), metric, matchers)
            }
            _ => {
                c.at = save;
                let (metric, matchers) = selector(&mut c)?;
                (None, metric, matchers)
            }
        };
        c.expect(")")?;
        if !c.done() {
            return Err(format!("unexpected text at position {}", c.at));
        }
        Ok((func, metric, matchers))
    })();
    let (func, metric, matchers) = body.map_err(why)?;
    Ok(Query {
        by,
        func,
        metric,
        matchers,
    })
}

impl Query {
    /// Does a series with `labels` match every matcher (a missing label is "")?
    pub fn selects(&self, labels: &Labels) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches(labels.get(&m.name).map_or("", String::as_str)))
    }

    /// How far before an evaluation time samples are needed.
    pub fn reach(&self) -> i64 {
        self.func.map_or(LOOKBACK_SECONDS, |(_, r)| r)
    }

    /// The value of one series at `t`, if it has one.
    fn value_at(&self, s: &[(i64, f64)], t: i64) -> Option<f64> {
        let from = match self.func {
            Some((_, range)) => t - range,
            None => t - LOOKBACK_SECONDS + 1,
        };
        let lo = s.partition_point(|(u, _)| *u < from);
        let hi = s.partition_point(|(u, _)| *u <= t);
        let window = &s[lo..hi];
        match self.func {
            None => window.last().map(|(_, v)| *v),
            Some((Func::MaxOverTime, _)) => window.iter().map(|(_, v)| *v).reduce(f64::max),
            Some((Func::MinOverTime, _)) => window.iter().map(|(_, v)| *v).reduce(f64::min),
            Some((Func::Increase, range)) => increase(window, t - range, t),
        }
    }

    /// Evaluate over `series` at `start, start + step, …, end`: one row per `by` group with its
    /// points (only the times it has a value).
    pub fn evaluate(&self, series: &[Series], start: i64, end: i64, step: i64) -> Vec<Row> {
        let mut groups: BTreeMap<Labels, Vec<&Series>> = BTreeMap::new();
        for s in series.iter().filter(|s| self.selects(&s.labels)) {
            let key: Labels = self
                .by
                .iter()
                .filter_map(|b| {
                    s.labels
                        .get(b)
                        .filter(|v| !v.is_empty())
                        .map(|v| (b.clone(), v.clone()))
                })
                .collect();
            groups.entry(key).or_default().push(s);
        }
        let mut rows = Vec::new();
        for (labels, members) in groups {
            let mut points = Vec::new();
            let mut t = start;
            while t <= end {
                let v = members
                    .iter()
                    .filter_map(|s| self.value_at(&s.samples, t))
                    .reduce(f64::max);
                if let Some(v) = v {
                    points.push((t, v));
                }
                t += step;
            }
            if !points.is_empty() {
                rows.push(Row { labels, points });
            }
        }
        rows
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// Prometheus' `increase`: the counter's rise over the samples in the window (resets counted
/// from zero), extrapolated towards the window's ends (`extrapolatedRate` in Prometheus 2's
/// promql/functions.go).
fn increase(w: &[(i64, f64)], range_start: i64, range_end: i64) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.1 - first.1;
    for pair in w.windows(2) {
        if pair[1].1 < pair[0].1 {
            result += pair[0].1;
        }
    }
    let sampled = (last.0 - first.0) as f64;
    let average = sampled / (w.len() - 1) as f64;
    let mut to_start = (first.0 - range_start) as f64;
    let to_end = (range_end - last.0) as f64;
    if result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    Some(result * (interval / sampled))
}

/// A value as Prometheus writes it (Go's `strconv.FormatFloat(v, 'f', -1, 64)`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
#[path = "promql_tests.rs"]
mod tests;
