//! What keeping credentials out of outputs costs: redacting a `/status`-sized document with two
//! registered secrets, and scrubbing 20,000 condition messages (one tick at fleet scale)
//! against the URL-userinfo-only scrub that came before. Results in BENCHMARKS.md.

use std::time::{Duration, Instant};

use flux_status_exporter::flux::scrub::{strip_credentials, strip_url_userinfo};
use flux_status_exporter::redact::{redact, register};

/// Best of `runs` timings of `work`.
fn best(runs: usize, mut work: impl FnMut() -> usize) -> (Duration, usize) {
    let mut fastest = Duration::MAX;
    let mut out = 0;
    for _ in 0..runs {
        let started = Instant::now();
        out = work();
        fastest = fastest.min(started.elapsed());
    }
    (fastest, out)
}

fn main() {
    register("ghp_R4nd0mT0kenValue1234567890abcdefXYZ9");
    register("kube-service-account-token-0123456789-abcdef");
    let line = "    \"message\": \"health check failed after 5m0s: timeout waiting for: [Deployment/web/web status: 'InProgress']\",\n";
    let document = line.repeat(10 * 1024 * 1024 / line.len());
    let (took, size) = best(5, || redact(&document).len());
    println!(
        "redact a {} MiB /status document: {:.1} ms",
        size >> 20,
        took.as_secs_f64() * 1e3
    );

    let message = "failed to checkout 'https://github.com/acme/app.git': authentication required for token 0123 and more words here";
    let (took, _) = best(5, || {
        (0..20_000).map(|_| strip_credentials(message).len()).sum()
    });
    println!(
        "scrub 20,000 condition messages: {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    let (took, _) = best(5, || {
        (0..20_000).map(|_| strip_url_userinfo(message).len()).sum()
    });
    println!(
        "  of which URL userinfo alone (the scrub before issue 13): {:.1} ms",
        took.as_secs_f64() * 1e3
    );
}
