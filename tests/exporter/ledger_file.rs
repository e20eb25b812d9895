//! The file ledger under the exporter: continued across restarts, and a corrupt or
//! incompatible file set aside with a warning instead of a crash loop.

use flux_status_exporter::ledger::{FileStore, decode};

use crate::common::*;

fn file_config(w: &World) -> flux_status_exporter::config::Config {
    w.config(&format!(
        "ledger: {{backend: file, path: {}}}\n",
        w.path("ledger.json").display()
    ))
}

#[tokio::test]
async fn the_file_ledger_is_continued_by_a_restarted_exporter() {
    let w = World::start().await;
    w.put(&[fleet(A), APPS.ready(A)]);
    let config = file_config(&w);
    completed(w.exporter(&config).await.tick().await);
    let bytes = std::fs::read(w.path("ledger.json")).unwrap();
    let stored = decode(&bytes, "test").unwrap();
    assert_eq!(
        ledger_rows(&stored),
        [row(
            "github.com/acme/fleet",
            "A",
            &context(NAMESPACE, "apps"),
            "success",
            "ReconciliationSucceeded"
        )]
    );
    completed(w.exporter(&config).await.tick().await);
    assert_eq!(w.github.requests().len(), 1);
    assert_eq!(w.configmap_writes(), Vec::<String>::new());
}

#[tokio::test]
async fn a_corrupt_or_incompatible_ledger_file_is_set_aside_with_a_warning_and_a_fresh_start() {
    for (content, problem) in [
        (
            &b"{\"version\": 1, \"repositories\": [tru"[..],
            "not a ledger: ",
        ),
        (
            &b"{\"version\": 2, \"statuses\": []}"[..],
            "written in format version 2, this exporter reads version 1",
        ),
        (&b"\x00\x01binary garbage"[..], "not a ledger: "),
    ] {
        let w = World::start().await;
        let path = w.path("ledger.json");
        std::fs::write(&path, content).unwrap();
        w.put(&[fleet(A), APPS.reconciling(A, None, "Progressing")]);
        let logs = Logs::capture();
        let mut x = w.exporter(&file_config(&w)).await;
        completed(x.tick().await);

        let warnings = logs.lines_at("WARN");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let warning = &warnings[0];
        assert!(
            warning.contains(&format!("ledger {}: {problem}", path.display())),
            "{warning}"
        );
        let aside: Vec<_> = std::fs::read_dir(w.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("ledger.json.corrupt-")
            })
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert!(
            warning.contains(&format!(
                "moved to {} and starting fresh",
                aside[0].display()
            )),
            "{warning}"
        );
        assert_eq!(std::fs::read(&aside[0]).unwrap(), content, "kept as it was");

        assert_eq!(
            brief(&w.github_since(0)),
            expect(&[("A", "pending", says::progressing())]),
            "only the current truth is posted"
        );
        let fresh = FileStore::new(&path).load().unwrap();
        assert_eq!(fresh.discarded, None);
        assert_eq!(fresh.ledger.len(), 1);
    }
}
