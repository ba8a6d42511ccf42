//! A report whose rows are built one at a time while it is written: `list -o json|yaml` need not
//! hold the rows of thousands of VMs at once beside the objects and readings they come from. It
//! serializes exactly like [`Report`].

use std::cell::RefCell;

use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

use super::{parts, ClusterInfo, ReportOptions, VmRow};
use crate::model::inventory::{Inventory, Readings, SourceKind};

/// Everything in a report but its rows.
#[derive(Debug, Clone)]
pub struct ReportHead {
    pub kind: &'static str,
    pub source: SourceKind,
    pub kubevirt: ClusterInfo,
    pub warnings: Vec<String>,
}

/// A report serialized as its rows are built; serializing it a second time gives no rows.
pub struct StreamedReport<'a> {
    pub head: ReportHead,
    rows: Rows<'a>,
}

struct Rows<'a>(RefCell<Option<Box<dyn Iterator<Item = VmRow> + 'a>>>);

/// The report of [`super::build`], its rows built as they are serialized.
pub fn streamed<'a>(
    inv: &'a Inventory,
    readings: &'a Readings,
    opts: &'a ReportOptions,
) -> StreamedReport<'a> {
    let (head, rows) = parts(inv, readings, opts);
    StreamedReport {
        head,
        rows: Rows(RefCell::new(Some(Box::new(rows)))),
    }
}

impl<'a> StreamedReport<'a> {
    /// Let `f` see each row as it is built and serialized (nothing is held).
    pub fn observed(self, f: impl FnMut(&VmRow) + 'a) -> StreamedReport<'a> {
        let mut f = f;
        let rows = self.rows.0.into_inner().map(|rows| {
            Box::new(rows.inspect(move |r| f(r))) as Box<dyn Iterator<Item = VmRow> + 'a>
        });
        StreamedReport {
            head: self.head,
            rows: Rows(RefCell::new(rows)),
        }
    }
}

impl Serialize for Rows<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let rows = self.0.borrow_mut().take();
        s.collect_seq(rows.into_iter().flatten())
    }
}

impl Serialize for StreamedReport<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The fields of `Report`, in its order, with its names and its skipping.
        let warnings = !self.head.warnings.is_empty();
        let mut st = s.serialize_struct("Report", 4 + usize::from(warnings))?;
        st.serialize_field("kind", &self.head.kind)?;
        st.serialize_field("source", &self.head.source)?;
        st.serialize_field("kubevirt", &self.head.kubevirt)?;
        st.serialize_field("vms", &self.rows)?;
        if warnings {
            st.serialize_field("warnings", &self.head.warnings)?;
        } else {
            st.skip_field("warnings")?;
        }
        st.end()
    }
}
