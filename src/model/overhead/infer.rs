//! Which KubeVirt versions reproduce an overhead the cluster applied, for clusters that state
//! no version (no KubeVirt CR, launcher images by digest): a running pod's compute request minus
//! its VMI's request is the O KubeVirt computed, and only some versions' formulas give it.

use std::fmt;

use super::{at, overhead, ClusterInputs, Version};
use crate::model::objects::VmiSpec;

/// Every version at which KubeVirt's overhead formula changes (constants, terms, gates), in
/// order. Between two of them the formula is the same, so the first version of a span stands
/// for the whole span.
const FORMULA_CHANGES: &[(u32, u32, u32)] = &[
    (0, 53, 0),
    (0, 53, 2),
    (0, 55, 0),
    (0, 57, 0),
    (0, 58, 1),
    (0, 58, 2),
    (0, 59, 0),
    (0, 59, 1),
    (1, 1, 0),
    (1, 2, 0),
    (1, 3, 0),
    (1, 4, 1),
    (1, 5, 0),
    (1, 5, 1),
    (1, 5, 3),
    (1, 6, 0),
    (1, 6, 4),
    (1, 7, 0),
    (1, 8, 0),
    (1, 10, 0),
];

/// KubeVirt releases with one overhead formula: from `first` up to (not including) `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionSpan {
    pub first: Version,
    pub next: Option<Version>,
}

impl fmt::Display for VersionSpan {
    /// `v0.57.0–v0.58.0`, `v1.0.x` (a whole minor line), `v1.5.3–v1.5.x`, `v1.10.0 and later`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.first;
        let Some(next) = self.next else {
            return write!(f, "{first} and later");
        };
        if first == Version::new(0, 0, 0) {
            return write!(f, "before {next}");
        }
        if next.patch > 0 {
            let last = Version::new(next.major, next.minor, next.patch - 1);
            return if last == first {
                write!(f, "{first}")
            } else {
                write!(f, "{first}–{last}")
            };
        }
        if next.minor == 0 {
            return write!(f, "{first} up to before {next}");
        }
        let line = format!("v{}.{}.x", next.major, next.minor - 1);
        if first.patch == 0 && first.major == next.major && first.minor + 1 == next.minor {
            f.write_str(&line)
        } else {
            write!(f, "{first}–{line}")
        }
    }
}

/// The spans of versions with one formula each, oldest first (before v0.53 is one span).
pub fn formula_spans() -> Vec<VersionSpan> {
    let mut starts = vec![Version::new(0, 0, 0)];
    starts.extend(FORMULA_CHANGES.iter().map(|&(a, b, c)| at(a, b, c)));
    (0..starts.len())
        .map(|i| VersionSpan {
            first: starts[i],
            next: starts.get(i + 1).copied(),
        })
        .collect()
}

/// A running pod's overhead as the cluster applied it, next to the VMI spec it was built from.
#[derive(Debug, Clone, Copy)]
pub struct AppliedOverhead<'a> {
    pub spec: &'a VmiSpec,
    pub bytes: i64,
}

/// The spans whose formula gives every pod's applied overhead, oldest first; empty when no
/// single span explains them all (or there is no pod).
pub fn spans_reproducing(
    pods: &[AppliedOverhead<'_>],
    cluster: &ClusterInputs,
) -> Vec<VersionSpan> {
    if pods.is_empty() {
        return Vec::new();
    }
    formula_spans()
        .into_iter()
        .filter(|span| {
            pods.iter()
                .all(|p| overhead(p.spec, span.first, cluster).total == p.bytes)
        })
        .collect()
}

/// Spans that follow one another joined into one (`v1.6.0–v1.6.3` and `v1.6.4–v1.6.x` read
/// `v1.6.0–v1.6.x`), for saying which releases reproduce an overhead.
pub fn joined(spans: &[VersionSpan]) -> Vec<VersionSpan> {
    let mut out: Vec<VersionSpan> = Vec::new();
    for s in spans {
        match out.last_mut() {
            Some(last) if last.next == Some(s.first) => last.next = s.next,
            _ => out.push(*s),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::objects::CpuSpec;
    use crate::units::Quantity;

    fn spec(request: &str, cores: u32) -> VmiSpec {
        let mut s = VmiSpec::default();
        s.domain.resources.requests.memory = Some(Quantity::new(request));
        s.domain.cpu = Some(CpuSpec {
            cores: Some(cores),
            ..Default::default()
        });
        s
    }

    #[test]
    fn spans_read_as_release_ranges() {
        let names: Vec<String> = formula_spans().iter().map(|s| s.to_string()).collect();
        assert_eq!(names[0], "before v0.53.0");
        assert!(names.contains(&"v1.2.x".to_string()), "{names:?}");
        assert!(names.contains(&"v0.59.1–v1.0.x".to_string()), "{names:?}");
        assert!(names.contains(&"v0.57.0–v0.58.0".to_string()), "{names:?}");
        assert!(names.contains(&"v0.59.0".to_string()), "{names:?}");
        assert!(names.contains(&"v1.5.3–v1.5.x".to_string()), "{names:?}");
        assert!(names.contains(&"v1.8.0–v1.9.x".to_string()), "{names:?}");
        assert!(names.contains(&"v1.3.0–v1.4.0".to_string()), "{names:?}");
        assert_eq!(names.last().unwrap(), "v1.10.0 and later");
    }

    /// An O that only the v0.57.0–v0.58.0 constants give (virtlogd 18Mi, libvirtd 35Mi).
    #[test]
    fn an_overhead_names_the_versions_that_give_it() {
        let s = spec("4Gi", 2);
        let cluster = ClusterInputs::default();
        let applied = overhead(&s, Version::new(0, 57, 3), &cluster).total;
        let pods = [AppliedOverhead {
            spec: &s,
            bytes: applied,
        }];
        let found = spans_reproducing(&pods, &cluster);
        let names: Vec<String> = found.iter().map(|s| s.to_string()).collect();
        assert_eq!(names, ["v0.57.0–v0.58.0"]);
        // The newest version's O (48Mi more here) is not what the pod shows.
        assert_ne!(overhead(&s, Version::NEWEST_KNOWN, &cluster).total, applied);
        // Pods that no single version explains give nothing.
        let other = spec("4Gi", 2);
        let newer = overhead(&other, Version::new(1, 6, 0), &cluster).total;
        let mixed = [
            pods[0],
            AppliedOverhead {
                spec: &other,
                bytes: newer,
            },
        ];
        assert!(spans_reproducing(&mixed, &cluster).is_empty());
        assert!(spans_reproducing(&[], &cluster).is_empty());
    }

    /// Several spans give the same O for a plain VM: all are named.
    #[test]
    fn a_plain_vm_names_every_span_with_its_formula() {
        let s = spec("1Gi", 1);
        let cluster = ClusterInputs::default();
        let applied = overhead(&s, Version::new(1, 6, 0), &cluster).total;
        let found = spans_reproducing(
            &[AppliedOverhead {
                spec: &s,
                bytes: applied,
            }],
            &cluster,
        );
        let names: Vec<String> = found.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            names,
            ["v1.6.0–v1.6.3", "v1.6.4–v1.6.x", "v1.7.x", "v1.8.0–v1.9.x"]
        );
        let names: Vec<String> = joined(&found).iter().map(|s| s.to_string()).collect();
        assert_eq!(names, ["v1.6.0–v1.9.x"]);
        let apart = [found[0], found[3]];
        assert_eq!(joined(&apart), apart);
    }
}
