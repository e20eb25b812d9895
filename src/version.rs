//! The version and build commit this binary reports.

/// Version and build commit, as shown by `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit the binary was built from, or `unknown`.
pub const BUILD_COMMIT: &str = env!("FLUX_STATUS_EXPORTER_BUILD_COMMIT");
