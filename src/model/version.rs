//! KubeVirt versions and how the tool learned which one a cluster runs.

use std::fmt;

use serde::Serialize;

/// A KubeVirt release version `vMAJOR.MINOR.PATCH` (pre-release and build suffixes dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// The newest release whose constants this tool knows (used when the version is unknown).
    pub const NEWEST_KNOWN: Version = Version::new(1, 10, 0);

    /// Parse `v1.3.0`, `1.3`, `v0.54.0-150400.3.19.1`, `v1.4.0-rc.1`, `v1.3.0+abc`.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let s = s
            .strip_prefix('v')
            .or_else(|| s.strip_prefix('V'))
            .unwrap_or(s);
        let core = s.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Version::new(major, minor, patch))
    }

    /// The version in a virt-launcher image reference, e.g.
    /// `registry.suse.com/suse/sles/15.4/virt-launcher:0.54.0-150400.3.19.1` or
    /// `quay.io/kubevirt/virt-launcher:v1.3.0`. Digests alone carry no version.
    pub fn from_launcher_image(image: &str) -> Option<Version> {
        let without_digest = image.split('@').next()?;
        let last = without_digest.rsplit('/').next()?;
        let (name, tag) = last.split_once(':')?;
        if !name.contains("virt-launcher") {
            return None;
        }
        Version::parse(tag)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How the version was learned, in the order the tool tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum VersionSource {
    /// `kubevirt` CR `.status.observedKubeVirtVersion`.
    KubevirtCr,
    /// The tag of a virt-launcher image.
    LauncherImage,
    /// `--kubevirt-version` on the command line.
    Flag,
    /// Nothing told, but the running pods' overhead (compute request − VMI request) is what
    /// only some versions' formulas give: the newest of them is used.
    InferredFromPod,
    /// Nothing told; the newest known constants are used.
    Assumed,
}

impl VersionSource {
    pub fn describe(self) -> &'static str {
        match self {
            VersionSource::KubevirtCr => "from the KubeVirt CR",
            VersionSource::LauncherImage => "from the virt-launcher image tag",
            VersionSource::Flag => "from --kubevirt-version",
            VersionSource::InferredFromPod => "inferred from the pod",
            VersionSource::Assumed => "assumed (newest known; set --kubevirt-version)",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            VersionSource::KubevirtCr => "kubevirtCR",
            VersionSource::LauncherImage => "launcherImage",
            VersionSource::Flag => "flag",
            VersionSource::InferredFromPod => "inferredFromPod",
            VersionSource::Assumed => "assumed",
        }
    }
}

/// A version and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectedVersion {
    pub version: Version,
    pub source: VersionSource,
}

/// Pick the version: the CR's observed version, else a launcher image tag, else the flag, else
/// the newest known row (reported as assumed).
pub fn detect<'a>(
    cr_observed: Option<&str>,
    launcher_images: impl IntoIterator<Item = &'a str>,
    flag: Option<Version>,
) -> DetectedVersion {
    if let Some(v) = cr_observed.and_then(Version::parse) {
        return DetectedVersion {
            version: v,
            source: VersionSource::KubevirtCr,
        };
    }
    if let Some(v) = launcher_images
        .into_iter()
        .find_map(Version::from_launcher_image)
    {
        return DetectedVersion {
            version: v,
            source: VersionSource::LauncherImage,
        };
    }
    if let Some(v) = flag {
        return DetectedVersion {
            version: v,
            source: VersionSource::Flag,
        };
    }
    DetectedVersion {
        version: Version::NEWEST_KNOWN,
        source: VersionSource::Assumed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_forms() {
        assert_eq!(Version::parse("v1.3.0"), Some(Version::new(1, 3, 0)));
        assert_eq!(Version::parse("1.3"), Some(Version::new(1, 3, 0)));
        assert_eq!(Version::parse("v1.4.0-rc.1"), Some(Version::new(1, 4, 0)));
        assert_eq!(
            Version::parse("0.54.0-150400.3.19.1"),
            Some(Version::new(0, 54, 0))
        );
        assert_eq!(Version::parse("v1.1.1+abc"), Some(Version::new(1, 1, 1)));
        assert_eq!(Version::parse("latest"), None);
        assert_eq!(Version::parse("v1.2.3.4"), None);
        assert_eq!(Version::parse(""), None);
    }

    #[test]
    fn launcher_image_tags() {
        let suse = "registry.suse.com/suse/sles/15.4/virt-launcher:0.54.0-150400.3.19.1";
        assert_eq!(
            Version::from_launcher_image(suse),
            Some(Version::new(0, 54, 0))
        );
        assert_eq!(
            Version::from_launcher_image("quay.io/kubevirt/virt-launcher:v1.3.0"),
            Some(Version::new(1, 3, 0))
        );
        assert_eq!(
            Version::from_launcher_image("localhost:5000/virt-launcher:v1.1.1@sha256:abc"),
            Some(Version::new(1, 1, 1))
        );
        assert_eq!(Version::from_launcher_image("busybox:1.37.0"), None);
        assert_eq!(
            Version::from_launcher_image("quay.io/kubevirt/virt-launcher@sha256:abc"),
            None
        );
    }

    #[test]
    fn detection_order() {
        let img = ["quay.io/kubevirt/virt-launcher:v1.1.1"];
        let d = detect(Some("v1.3.0"), img, Some(Version::new(0, 54, 0)));
        assert_eq!(d.source, VersionSource::KubevirtCr);
        let d = detect(None, img, Some(Version::new(0, 54, 0)));
        assert_eq!(
            (d.version, d.source),
            (Version::new(1, 1, 1), VersionSource::LauncherImage)
        );
        let d = detect(Some("garbage"), [], Some(Version::new(0, 54, 0)));
        assert_eq!(
            (d.version, d.source),
            (Version::new(0, 54, 0), VersionSource::Flag)
        );
        let d = detect(None, [], None);
        assert_eq!(
            (d.version, d.source),
            (Version::NEWEST_KNOWN, VersionSource::Assumed)
        );
    }
}
