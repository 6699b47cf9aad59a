//! Placeholder replaced by the normalisation module.
