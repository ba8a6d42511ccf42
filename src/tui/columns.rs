//! The main table's columns: header, sort key, how to compare two rows, and which columns go
//! first when the terminal is narrow.

use std::cmp::Ordering;

use crate::model::report::{Flag, TableRow};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    Namespace,
    Name,
    Node,
    Guest,
    VmLimit,
    PodLimit,
    Usage,
    Overhead,
    Headroom,
    Risk,
    Ooms,
    Source,
}

/// Left-to-right order on a wide terminal.
pub const ALL: [Column; 12] = [
    Column::Namespace,
    Column::Name,
    Column::Node,
    Column::Guest,
    Column::VmLimit,
    Column::PodLimit,
    Column::Usage,
    Column::Overhead,
    Column::Headroom,
    Column::Risk,
    Column::Ooms,
    Column::Source,
];

/// Which columns survive on a narrow terminal, most important first.
pub const PRIORITY: [Column; 12] = [
    Column::Name,
    Column::Risk,
    Column::Headroom,
    Column::Usage,
    Column::Overhead,
    Column::Namespace,
    Column::PodLimit,
    Column::Ooms,
    Column::Guest,
    Column::Node,
    Column::VmLimit,
    Column::Source,
];

impl Column {
    pub fn header(self) -> &'static str {
        match self {
            Column::Namespace => "NAMESPACE",
            Column::Name => "NAME",
            Column::Node => "NODE",
            Column::Guest => "GUEST",
            Column::VmLimit => "VM LIMIT",
            Column::PodLimit => "POD LIMIT",
            Column::Usage => "USAGE",
            Column::Overhead => "OVERHEAD",
            Column::Headroom => "HEADROOM",
            Column::Risk => "RISK",
            Column::Ooms => "OOMS",
            Column::Source => "SOURCE",
        }
    }

    /// The shift-letter that sorts by this column.
    pub fn sort_key(self) -> char {
        match self {
            Column::Namespace => 'S',
            Column::Name => 'N',
            Column::Node => 'D',
            Column::Guest => 'G',
            Column::VmLimit => 'V',
            Column::PodLimit => 'P',
            Column::Usage => 'U',
            Column::Overhead => 'O',
            Column::Headroom => 'H',
            Column::Risk => 'R',
            Column::Ooms => 'K',
            Column::Source => 'E',
        }
    }

    pub fn from_sort_key(c: char) -> Option<Column> {
        ALL.into_iter().find(|col| col.sort_key() == c)
    }

    /// Numeric columns are right-aligned.
    pub fn numeric(self) -> bool {
        matches!(
            self,
            Column::Guest | Column::VmLimit | Column::PodLimit | Column::Headroom | Column::Ooms
        )
    }

    /// Compare two rows by this column alone; unknown values sort last.
    pub fn compare(self, a: &TableRow, b: &TableRow) -> Ordering {
        fn opt<T: Ord>(a: Option<T>, b: Option<T>) -> Ordering {
            match (a, b) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        }
        match self {
            Column::Namespace => a.namespace.cmp(&b.namespace),
            Column::Name => a.name.cmp(&b.name),
            Column::Node => opt(a.node.as_ref(), b.node.as_ref()),
            Column::Guest => opt(a.guest_bytes, b.guest_bytes),
            Column::VmLimit => opt(a.vm_limit_bytes, b.vm_limit_bytes),
            Column::PodLimit => opt(a.pod_limit_bytes, b.pod_limit_bytes),
            Column::Usage => opt(a.usage_permille(), b.usage_permille()),
            Column::Overhead => opt(a.overhead_used_bytes, b.overhead_used_bytes),
            Column::Headroom => opt(a.headroom_bytes, b.headroom_bytes),
            Column::Risk => a
                .risk
                .cmp(&b.risk)
                // A VM on its way to an OOM kill goes first, the soonest first.
                .then_with(|| opt(a.oom_eta_seconds(), b.oom_eta_seconds()))
                .then_with(|| opt(a.headroom_bytes, b.headroom_bytes))
                .then_with(|| {
                    b.has_flag(Flag::UnderReserved)
                        .cmp(&a.has_flag(Flag::UnderReserved))
                }),
            Column::Ooms => b.oom_kills.cmp(&a.oom_kills),
            Column::Source => opt(
                a.live_source.map(|s| s.as_str()),
                b.live_source.map(|s| s.as_str()),
            ),
        }
    }
}

/// The active sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: Column,
    pub reverse: bool,
}

impl Default for Sort {
    /// Risk first, then least headroom.
    fn default() -> Sort {
        Sort {
            column: Column::Risk,
            reverse: false,
        }
    }
}

impl Sort {
    /// Full order: the column, then namespace/name so the order is stable between snapshots.
    pub fn compare(&self, a: &TableRow, b: &TableRow) -> Ordering {
        let o = self
            .column
            .compare(a, b)
            .then_with(|| a.namespace.cmp(&b.namespace))
            .then_with(|| a.name.cmp(&b.name));
        if self.reverse {
            o.reverse()
        } else {
            o
        }
    }
}
