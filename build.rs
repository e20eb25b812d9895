//! Records the git commit the binary was built from, for `--version` and the build-info metric.
//! `FLUX_STATUS_EXPORTER_COMMIT` wins (container builds have no `.git`).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=FLUX_STATUS_EXPORTER_COMMIT");
    for path in [".git/HEAD", ".git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("FLUX_STATUS_EXPORTER_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=FLUX_STATUS_EXPORTER_BUILD_COMMIT={commit}");
}
