//! KubeVirt release numbers as the simulated cluster reports them (`v1.3.0`).

use std::fmt;

/// `vMAJOR.MINOR.PATCH`; pre-release and build suffixes are dropped when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// `v1.3.0`, `1.3`, `v0.54.0-150400.3.19.1`, `v1.9.0-rc.2`.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let release = text.split(['-', '+']).next()?;
        let numbers: Vec<u32> = release
            .split('.')
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        match numbers[..] {
            [major, minor] => Some(Version::new(major, minor, 0)),
            [major, minor, patch] => Some(Version::new(major, minor, patch)),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::Version;

    #[test]
    fn reads_release_tags() {
        assert_eq!(Version::parse("v1.3.0"), Some(Version::new(1, 3, 0)));
        assert_eq!(Version::parse("1.3"), Some(Version::new(1, 3, 0)));
        assert_eq!(Version::parse("v1.9.0-rc.2"), Some(Version::new(1, 9, 0)));
        assert_eq!(
            Version::parse("0.54.0-150400.3.19.1"),
            Some(Version::new(0, 54, 0))
        );
        assert_eq!(Version::parse("latest"), None);
        assert_eq!(Version::parse("1.2.3.4"), None);
        assert_eq!(Version::new(0, 54, 0).to_string(), "v0.54.0");
    }
}
