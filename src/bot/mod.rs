//! The [`Bot`] handle users call.

/// A cheap-to-clone handle to a running bot. (Filled in by the runtime work.)
#[derive(Debug, Clone)]
pub struct Bot {
    _private: (),
}
