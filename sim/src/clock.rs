//! The simulator's clock: wall time for timestamps, and a model time tests can move forward.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Model seconds since the simulator started; `advance` jumps ahead without waiting.
#[derive(Debug, Clone)]
pub struct SimClock {
    started: Instant,
    started_wall: SystemTime,
    skipped: Duration,
    /// Model time stands still here while set (tests compare numbers across writes).
    frozen: Option<Duration>,
    /// Model seconds per wall second (1 normally; more makes the demo's story happen sooner).
    speed: f64,
}

impl SimClock {
    pub fn new() -> SimClock {
        SimClock {
            started: Instant::now(),
            started_wall: SystemTime::now(),
            skipped: Duration::ZERO,
            frozen: None,
            speed: 1.0,
        }
    }

    /// A clock whose model time runs `speed` times as fast as wall time (at least 1).
    pub fn with_speed(speed: f64) -> SimClock {
        SimClock {
            speed: if speed.is_finite() {
                speed.max(1.0)
            } else {
                1.0
            },
            ..SimClock::new()
        }
    }

    /// Wall time since start, in model time.
    fn running(&self) -> Duration {
        self.started.elapsed().mul_f64(self.speed)
    }

    fn elapsed(&self) -> Duration {
        self.frozen.unwrap_or_else(|| self.running() + self.skipped)
    }

    /// Model seconds since start.
    pub fn now(&self) -> f64 {
        self.elapsed().as_secs_f64()
    }

    /// Stop model time (`true`) or let it run on from where it stopped (`false`).
    pub fn freeze(&mut self, frozen: bool) {
        match (frozen, self.frozen) {
            (true, None) => self.frozen = Some(self.elapsed()),
            (false, Some(at)) => {
                self.frozen = None;
                self.skipped = at.saturating_sub(self.running());
            }
            _ => {}
        }
    }

    pub fn advance(&mut self, by: Duration) {
        self.skipped += by;
        if let Some(at) = &mut self.frozen {
            *at += by;
        }
    }

    /// The model time as wall-clock time (for timestamps).
    pub fn wall(&self) -> SystemTime {
        self.started_wall + self.elapsed()
    }

    /// RFC 3339 UTC timestamp of the model time, as Kubernetes writes them.
    pub fn timestamp(&self) -> String {
        rfc3339(self.wall())
    }

    /// [`SimClock::timestamp`] of model time `at` (seconds since start; earlier or later).
    pub fn timestamp_at(&self, at: f64) -> String {
        let at = Duration::from_secs_f64(at.max(0.0));
        rfc3339(self.started_wall + at)
    }
}

impl Default for SimClock {
    fn default() -> Self {
        SimClock::new()
    }
}

/// `2024-05-09T14:52:38Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp written by [`rfc3339`].
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date, time) = s.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<f64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    Some(days_from_civil(y, m, day) * 86_400 + (hh as i64) * 3600 + (mm as i64) * 60 + ss as i64)
}

// Howard Hinnant's algorithms.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// kubectl's short age: `45s`, `5m10s`, `15m`, `3h5m`, `2d3h`, `40d`.
pub fn human_age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=599 => format!("{}m{}s", s / 60, s % 60),
        600..=10_799 => {
            let (h, m) = (s / 3600, (s % 3600) / 60);
            if h == 0 {
                format!("{m}m")
            } else {
                format!("{h}h{m}m")
            }
        }
        10_800..=172_799 => format!("{}h", s / 3600),
        172_800..=691_199 => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1_715_266_358);
        assert_eq!(rfc3339(t), "2024-05-09T14:52:38Z");
        assert_eq!(parse_rfc3339("2024-05-09T14:52:38Z"), Some(1_715_266_358));
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn ages_like_kubectl() {
        assert_eq!(human_age(45), "45s");
        assert_eq!(human_age(310), "5m10s");
        assert_eq!(human_age(900), "15m");
        assert_eq!(human_age(3600 * 3 + 300), "3h");
        assert_eq!(human_age(3600 + 300), "1h5m");
        assert_eq!(human_age(86_400 * 2 + 3600 * 3), "2d3h");
    }

    #[test]
    fn a_faster_clock_runs_ahead_of_wall_time() {
        // Wall time is taken around the clock's whole life, so the bounds hold on a busy machine.
        let start = Instant::now();
        let c = SimClock::with_speed(50.0);
        std::thread::sleep(Duration::from_millis(40));
        let model = c.now();
        let wall = start.elapsed().as_secs_f64();
        assert!(model >= 50.0 * 0.04, "{model}");
        assert!(model <= 50.0 * wall, "{model} after {wall}s");
        assert_eq!(SimClock::with_speed(f64::NAN).speed, 1.0);
        assert_eq!(SimClock::with_speed(0.1).speed, 1.0);
    }

    #[test]
    fn advance_moves_model_time() {
        let mut c = SimClock::new();
        let before = c.now();
        c.advance(Duration::from_secs(100));
        assert!(c.now() >= before + 100.0);
    }
}
