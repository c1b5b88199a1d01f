//! Tiered storage, the node's side (work in progress: uploads are not scheduled yet).

use super::Node;
use crate::tier::{UploadFailed, Uploaded};
use crate::time::Now;

impl Node {
    /// An upload finished (see `Output::Upload`).
    pub(super) fn on_uploaded(&mut self, _now: Now, outcome: Result<Uploaded, UploadFailed>) {
        tracing::debug!(?outcome, "upload finished");
    }
}
