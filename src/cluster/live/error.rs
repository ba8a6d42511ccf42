//! Why a live source could not be opened.

use crate::cluster::connect::ConnectError;

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("KubeVirt is not installed on the cluster at {server} (it serves no kubevirt.io/v1 virtualmachines)")]
    NoKubeVirt { server: String },
    /// Nothing readable: the server's own message.
    #[error("{0}")]
    Forbidden(String),
    #[error("reading {resource} from {server}: {message}")]
    Read {
        resource: &'static str,
        server: String,
        /// The server's status code (e.g. 403 from a proxy that sends no Kubernetes Status);
        /// `None` when no answer came.
        code: Option<u16>,
        message: String,
    },
    #[error("the Kubernetes API server at {server} did not send the lists of VMs, VMIs and pods within {timeout}")]
    InitialTimeout { server: String, timeout: String },
}
