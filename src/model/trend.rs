//! Time to OOM: when a VM's overhead has grown steadily, when it will reach its budget at that
//! rate. Judged by a least-squares line through the recent samples; shown only when the trend is
//! clear:
//! - at least [`MIN_SAMPLES`] samples spanning at least [`MIN_SPAN`] seconds, all within the last
//!   [`WINDOW`] seconds;
//! - growth of at least [`MIN_RATE`] bytes a second (1 MiB a minute: slower drift is noise);
//! - the line explains at least 90% of the variance (R² ≥ 0.9): a sawtooth or a single jump is
//!   not a trend;
//! - the budget is reached within [`HORIZON`] seconds.
//!
//! The error is the spread of the ETA over the slope ± two standard errors, and at least how far
//! the ETA of a line through the recent half of the samples alone is from it (a leak that began
//! within the window makes the whole window's line too flat).

use serde::Serialize;

pub const MIN_SAMPLES: usize = 6;
pub const MIN_SPAN: i64 = 60;
pub const WINDOW: i64 = 15 * 60;
pub const MIN_RATE: f64 = (1 << 20) as f64 / 60.0;
pub const MIN_R2: f64 = 0.9;
pub const HORIZON: i64 = 24 * 3600;

/// One observation of overhead used (bytes outside guest RAM) at a Unix time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Sample {
    pub at: i64,
    pub bytes: i64,
}

/// When the budget will be reached, if the trend holds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Eta {
    /// Seconds from `now` until the fitted line reaches the budget.
    pub seconds: i64,
    /// Half the spread of that figure over the slope's uncertainty (± this many seconds).
    pub error_seconds: i64,
    /// The fitted growth, bytes a second.
    pub rate: f64,
}

impl Eta {
    /// `OOM in ~4 min` style words for tables and the dashboard.
    pub fn words(&self) -> String {
        format!("~{}", duration_words(self.seconds))
    }
}

/// `45 s`, `4 min`, `2.5 h`.
pub fn duration_words(s: i64) -> String {
    if s < 90 {
        format!("{s} s")
    } else if s < 90 * 60 {
        format!("{} min", (s + 30) / 60)
    } else {
        format!("{:.1} h", s as f64 / 3600.0)
    }
}

/// The ETA to `budget` from `samples` (any order), judged at `now`; `None` unless the trend is
/// clear (see the module's rules). The error also covers the disagreement with a line through
/// the recent half of the samples alone: when the growth began within the window (a leak that
/// started after a calm spell), the whole window's line is too flat and its own spread too
/// narrow.
pub fn eta(samples: &[Sample], budget: i64, now: i64) -> Option<Eta> {
    let recent: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at <= now && now - s.at <= WINDOW)
        .collect();
    let whole = fit(&recent)?;
    let t0 = recent.iter().map(|s| s.at).min()?;
    let t1 = recent.iter().map(|s| s.at).max()?;
    if t1 - t0 < MIN_SPAN || !(whole.slope >= MIN_RATE && whole.r2 >= MIN_R2) {
        return None;
    }
    let mut e = whole.eta(budget, now)?;
    let mid = t1 - (t1 - t0) / 2;
    let later: Vec<&Sample> = recent.iter().copied().filter(|s| s.at >= mid).collect();
    if let Some(half) = fit(&later)
        .filter(|f| f.slope >= MIN_RATE)
        .and_then(|f| f.eta(budget, now))
    {
        e.error_seconds = e.error_seconds.max((half.seconds - e.seconds).abs());
    }
    Some(e)
}

/// A least-squares line through samples: bytes = intercept + slope × (at − t0).
struct Line {
    t0: i64,
    slope: f64,
    intercept: f64,
    /// How much of the variance the line explains.
    r2: f64,
    /// The slope's standard error.
    se: f64,
}

fn fit(samples: &[&Sample]) -> Option<Line> {
    if samples.len() < MIN_SAMPLES {
        return None;
    }
    let t0 = samples.iter().map(|s| s.at).min()?;
    let n = samples.len() as f64;
    let xs: Vec<f64> = samples.iter().map(|s| (s.at - t0) as f64).collect();
    let ys: Vec<f64> = samples.iter().map(|s| s.bytes as f64).collect();
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let syy: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let residual = (syy - slope * sxy).max(0.0);
    Some(Line {
        t0,
        slope,
        intercept: my - slope * mx,
        r2: sxy * sxy / (sxx * syy),
        se: if n > 2.0 {
            (residual / (n - 2.0) / sxx).sqrt()
        } else {
            0.0
        },
    })
}

impl Line {
    /// When the line reaches `budget`, with the spread over the slope ± two standard errors.
    fn eta(&self, budget: i64, now: i64) -> Option<Eta> {
        let fitted_now = self.intercept + self.slope * (now - self.t0) as f64;
        let left = budget as f64 - fitted_now;
        if left <= 0.0 {
            // Already at the budget by the line: the headroom says so; no countdown.
            return None;
        }
        let seconds = left / self.slope;
        if !seconds.is_finite() || seconds > HORIZON as f64 {
            return None;
        }
        let fast = left / (self.slope + 2.0 * self.se);
        let slow = if self.slope - 2.0 * self.se > 0.0 {
            left / (self.slope - 2.0 * self.se)
        } else {
            HORIZON as f64
        };
        Some(Eta {
            seconds: seconds.round() as i64,
            error_seconds: ((slow - fast) / 2.0).round().min(HORIZON as f64) as i64,
            rate: self.slope,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: i64 = 1 << 20;

    fn line(start: i64, every: i64, n: usize, from: i64, per_s: i64) -> Vec<Sample> {
        (0..n as i64)
            .map(|i| Sample {
                at: start + i * every,
                bytes: from + per_s * i * every,
            })
            .collect()
    }

    #[test]
    fn a_leak_that_began_after_a_calm_spell_is_within_the_stated_error() {
        // Flat at 300Mi for 30 s, then 2 MiB/s for 60 s, a sample a second; budget 500Mi:
        // the truth is 40 s from the last sample (420Mi).
        let mut s = line(0, 1, 30, 300 * MI, 0);
        s.extend(line(30, 1, 61, 300 * MI, 2 * MI));
        let now = 90;
        let e = eta(&s, 500 * MI, now).unwrap();
        assert!(
            (e.seconds - 40).abs() <= e.error_seconds,
            "said {} s ± {} s, the truth is 40 s",
            e.seconds,
            e.error_seconds
        );
    }

    #[test]
    fn a_steady_leak_gets_an_eta() {
        // 2 MiB/s from 400Mi, sampled every 10 s for 2 min; budget 700Mi.
        let s = line(1000, 10, 13, 400 * MI, 2 * MI);
        let now = 1120;
        let e = eta(&s, 700 * MI, now).unwrap();
        // At now the line is at 640Mi: 60Mi left at 2Mi/s = 30 s.
        assert_eq!(e.seconds, 30);
        assert_eq!(e.error_seconds, 0);
        assert_eq!(e.words(), "~30 s");
    }

    #[test]
    fn noise_widens_the_error_but_keeps_the_trend() {
        let mut s = line(0, 10, 30, 300 * MI, MI / 2);
        for (i, x) in s.iter_mut().enumerate() {
            x.bytes += if i % 2 == 0 { 3 * MI } else { -3 * MI };
        }
        let e = eta(&s, 700 * MI, 290).unwrap();
        assert!((450..570).contains(&e.seconds), "{e:?}");
        assert!(e.error_seconds > 0, "{e:?}");
    }

    #[test]
    fn no_eta_without_a_clear_trend() {
        // Too few samples.
        assert!(eta(&line(0, 10, 5, 0, MI), GI, 40).is_none());
        // Too short a span.
        assert!(eta(&line(0, 5, 10, 0, MI), GI, 45).is_none());
        // Flat.
        assert!(eta(&line(0, 10, 20, 400 * MI, 0), GI, 190).is_none());
        // Too slow (under 1 MiB a minute).
        assert!(eta(&line(0, 10, 20, 400 * MI, 10_000), GI, 190).is_none());
        // Shrinking.
        assert!(eta(&line(0, 10, 20, 400 * MI, -MI), GI, 190).is_none());
        // A sawtooth: up and down by 100Mi.
        let saw: Vec<Sample> = (0..20)
            .map(|i| Sample {
                at: i * 10,
                bytes: 400 * MI + if i % 2 == 0 { 0 } else { 100 * MI },
            })
            .collect();
        assert!(eta(&saw, GI, 190).is_none());
        // Already past the budget.
        assert!(eta(&line(0, 10, 20, 400 * MI, MI), 300 * MI, 190).is_none());
        // Beyond the horizon.
        assert!(eta(&line(0, 10, 20, 0, 20_000), 1 << 50, 190).is_none());
        // Old samples do not count.
        assert!(eta(&line(0, 10, 20, 0, MI), GI, 190 + WINDOW + 200).is_none());
    }

    const GI: i64 = 1 << 30;

    #[test]
    fn words() {
        assert_eq!(duration_words(45), "45 s");
        assert_eq!(duration_words(240), "4 min");
        assert_eq!(duration_words(9000), "2.5 h");
    }
}
