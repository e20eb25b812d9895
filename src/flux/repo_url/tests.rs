//! Clone URLs of every form each forge hands out.

use super::*;

fn locate(url: &str, kind: Option<ForgeKind>) -> (String, String) {
    let loc = RepoUrl::parse(url)
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .locate(kind)
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    (loc.host, loc.repository)
}

#[test]
fn every_clone_url_form_names_its_host_and_repository() {
    use ForgeKind::*;
    let cases: &[(&str, Option<ForgeKind>, &str, &str)] = &[
        (
            "https://github.com/acme/app",
            None,
            "github.com",
            "acme/app",
        ),
        (
            "https://github.com/acme/app.git",
            None,
            "github.com",
            "acme/app",
        ),
        (
            "https://github.com/acme/app.git/",
            None,
            "github.com",
            "acme/app",
        ),
        (
            "http://git.internal:8080/acme/app.git",
            Some(Gitea),
            "git.internal",
            "acme/app",
        ),
        (
            "https://user@GitHub.com/acme/app.git",
            None,
            "github.com",
            "acme/app",
        ),
        (
            "https://x-access-token:s3cr3t@github.com/acme/app.git",
            None,
            "github.com",
            "acme/app",
        ),
        (
            "ssh://git@github.com/acme/app.git",
            None,
            "github.com",
            "acme/app",
        ),
        (
            "ssh://git@github.com:22/acme/app.git",
            None,
            "github.com",
            "acme/app",
        ),
        (
            "git@github.com:acme/app.git",
            None,
            "github.com",
            "acme/app",
        ),
        ("github.com:acme/app", None, "github.com", "acme/app"),
        (
            "https://gitlab.com/acme/platform/team/app.git",
            None,
            "gitlab.com",
            "acme/platform/team/app",
        ),
        (
            "git@gitlab.example.com:acme/platform/app.git",
            Some(GitLab),
            "gitlab.example.com",
            "acme/platform/app",
        ),
        (
            "https://bitbucket.org/acme/app.git",
            None,
            "bitbucket.org",
            "acme/app",
        ),
        (
            "https://dev.azure.com/acme/platform/_git/edge-config",
            None,
            "dev.azure.com",
            "acme/platform/edge-config",
        ),
        (
            "https://acme@dev.azure.com/acme/platform/_git/edge-config",
            None,
            "dev.azure.com",
            "acme/platform/edge-config",
        ),
        (
            "https://acme.visualstudio.com/platform/_git/edge-config",
            None,
            "dev.azure.com",
            "acme/platform/edge-config",
        ),
        (
            "https://acme.visualstudio.com/DefaultCollection/platform/_git/edge-config",
            None,
            "dev.azure.com",
            "acme/platform/edge-config",
        ),
        (
            "git@ssh.dev.azure.com:v3/acme/platform/edge-config",
            None,
            "dev.azure.com",
            "acme/platform/edge-config",
        ),
        (
            "ssh://git@ssh.dev.azure.com/v3/acme/platform/edge-config",
            None,
            "dev.azure.com",
            "acme/platform/edge-config",
        ),
        (
            "acme@vs-ssh.visualstudio.com:v3/acme/platform/edge-config",
            None,
            "dev.azure.com",
            "acme/platform/edge-config",
        ),
        (
            "https://dev.azure.com/acme/_git/platform",
            None,
            "dev.azure.com",
            "acme/platform/platform",
        ),
        (
            "https://dev.azure.com/acme/My%20Project/_git/My%20Repo",
            None,
            "dev.azure.com",
            "acme/My Project/My Repo",
        ),
        (
            "https://tfs.example.com/tfs/Main/platform/_git/edge",
            Some(AzureDevOps),
            "tfs.example.com",
            "tfs/Main/platform/edge",
        ),
        (
            "https://git.example.com/scm/OPS/edge-dc.git",
            None,
            "git.example.com",
            "OPS/edge-dc",
        ),
        (
            "https://git.example.com/bitbucket/scm/ops/edge-dc.git",
            Some(BitbucketServer),
            "git.example.com",
            "ops/edge-dc",
        ),
        (
            "ssh://git@git.example.com:7999/ops/edge-dc.git",
            Some(BitbucketServer),
            "git.example.com",
            "ops/edge-dc",
        ),
        (
            "https://gitea.example.com/ops/tools.git",
            Some(Gitea),
            "gitea.example.com",
            "ops/tools",
        ),
        (
            "https://example.com/gitea/ops/tools.git",
            Some(Gitea),
            "example.com",
            "ops/tools",
        ),
        (
            "https://[::1]:3000/ops/tools.git",
            Some(Gitea),
            "[::1]",
            "ops/tools",
        ),
        (
            "https://github.com./acme/app",
            None,
            "github.com",
            "acme/app",
        ),
    ];
    for (url, kind, host, repo) in cases {
        assert_eq!(
            locate(url, *kind),
            (host.to_string(), repo.to_string()),
            "{url}"
        );
    }
}

#[test]
fn the_host_comes_from_the_authority_never_from_the_path_or_user() {
    assert_eq!(
        locate("https://github.com@evil.example/acme/app.git", None).0,
        "evil.example"
    );
    assert_eq!(
        locate("https://evil.example/github.com/acme", None).0,
        "evil.example"
    );
    assert_eq!(
        RepoUrl::parse("https://evil.example#@github.com/acme/app")
            .unwrap()
            .host,
        "evil.example"
    );
    assert_eq!(
        RepoUrl::parse("https://evil.example?@github.com/acme/app")
            .unwrap()
            .host,
        "evil.example"
    );
    assert!(RepoUrl::parse("https://evil.example\\@github.com/acme/app").is_err());
}

#[test]
fn a_url_refused_for_its_user_information_says_so_and_names_the_character() {
    assert_eq!(
        RepoUrl::parse("https://github.com\\@127.0.0.1:8080/acme/app")
            .unwrap_err()
            .to_string(),
        "`https://127.0.0.1:8080/acme/app`: the user information before `@` contains '\\\\', which git URLs cannot carry there (it makes the host ambiguous); percent-encode it or remove the user information"
    );
    assert_eq!(
        RepoUrl::parse("https://x@github.com@127.0.0.1/acme/app")
            .unwrap_err()
            .to_string(),
        "`https://127.0.0.1/acme/app`: the user information before `@` contains '@', which git URLs cannot carry there (it makes the host ambiguous); percent-encode it or remove the user information"
    );
    assert!(RepoUrl::parse("https://github.com%2eevil.example/acme/app").is_err());
}

#[test]
fn urls_that_name_no_repository_are_rejected_with_the_user_information_hidden() {
    let cases = [
        ("", "the repository URL is empty"),
        (
            "oci://ghcr.io/acme/manifests",
            "`oci://ghcr.io/acme/manifests`: scheme `oci` is not a git transport (expected https, http or ssh)",
        ),
        (
            "s3://bucket/path",
            "`s3://bucket/path`: scheme `s3` is not a git transport (expected https, http or ssh)",
        ),
        (
            "just-a-word",
            "`just-a-word`: not a URL (expected scheme://host/path or user@host:path)",
        ),
        (
            "https://user:hunter2@github.com:99999/acme/app",
            "`https://github.com:99999/acme/app`: invalid port `99999`",
        ),
        (
            "https://git hub.com/acme/app",
            "`https://git hub.com/acme/app`: invalid host `git hub.com`",
        ),
        (
            "https://github.com/acme/../app",
            "`https://github.com/acme/../app`: invalid path segment `..`",
        ),
        (
            "https://github.com/acme/%2F",
            "`https://github.com/acme/%2F`: invalid path segment `%2F`",
        ),
    ];
    for (url, message) in cases {
        assert_eq!(
            RepoUrl::parse(url).unwrap_err().to_string(),
            message,
            "{url}"
        );
    }
    let err = RepoUrl::parse("https://github.com/acme/app/tree/main")
        .unwrap()
        .locate(None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`github.com/acme/app/tree/main`: the path does not name a github repository (owner/repository)"
    );
    let err = RepoUrl::parse("https://example.com/ops/tools")
        .unwrap()
        .locate(Some(ForgeKind::AzureDevOps))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`example.com/ops/tools`: the path does not name a azuredevops repository (org/project/_git/repository)"
    );
}

#[test]
fn redaction_removes_credentials_from_every_form() {
    assert_eq!(
        redact_userinfo("https://u:tok@h.example/a/b"),
        "https://h.example/a/b"
    );
    assert_eq!(
        redact_userinfo("git@h.example:a/b.git"),
        "h.example:a/b.git"
    );
    assert_eq!(
        redact_userinfo("https://h.example/a@b"),
        "https://h.example/a@b"
    );
}

proptest::proptest! {
    #[test]
    fn parsing_any_string_never_panics(s in "\\PC*") {
        if let Ok(url) = RepoUrl::parse(&s) {
            for kind in ForgeKind::ALL {
                let _ = url.locate(Some(kind));
            }
            let _ = url.locate(None);
        }
    }

    #[test]
    fn parsing_url_like_strings_never_panics(
        scheme in "(https|http|ssh|)", user in "([a-z:@]{0,6}@)?", host in "[a-zA-Z0-9.\\[\\]:-]{0,20}",
        path in "(/[a-zA-Z0-9%._@:-]{0,8}){0,6}"
    ) {
        let sep = if scheme.is_empty() { ":" } else { "://" };
        let text = format!("{scheme}{sep}{user}{host}{path}");
        if let Ok(url) = RepoUrl::parse(&text) {
            let _ = url.locate(None);
        }
    }
}
