//! What each forge kind is, as one table: its public service, the credentials it accepts and
//! how a token is presented, how its API names a repository, and the default pacing. Pure data
//! and lookups; the configuration, URL parsing and the publishers read their facts here.

use super::forge::ForgeKind;

/// A forge's public service (a host that identifies the forge by itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicService {
    /// The host of clone URLs, e.g. `github.com`.
    pub host: &'static str,
    /// The API base URL for that host.
    pub api_url: &'static str,
}

/// A kind of configured credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// `credentials.token`.
    Token,
    /// `credentials.basic` (username and password).
    Basic,
    /// `credentials.githubApp`.
    GitHubApp,
}

impl CredentialKind {
    /// The configuration key.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Token => "token",
            CredentialKind::Basic => "basic",
            CredentialKind::GitHubApp => "githubApp",
        }
    }
}

/// How a token credential is presented to the forge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenForm {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: token <token>` (Gitea, Forgejo).
    Token,
    /// `PRIVATE-TOKEN: <token>` (GitLab).
    PrivateToken,
    /// `Authorization: Basic base64(:token)`: HTTP Basic with an empty user (Azure DevOps).
    BasicEmptyUser,
}

/// How many path segments name a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segments {
    /// Exactly this many.
    Exactly(usize),
    /// This many or more.
    AtLeast(usize),
}

/// How the forge's API names a repository, and how its clone URLs' paths look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepositoryShape {
    /// Segments of the API's repository name.
    pub segments: Segments,
    /// The API's form, for messages (`owner/repository`).
    pub api_form: &'static str,
    /// The clone URL path's form, for messages.
    pub clone_form: &'static str,
}

/// A repository name that does not have its forge's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("repository `{repository}` is not {expected}")]
pub struct InvalidRepository {
    /// The name as given.
    pub repository: String,
    /// The expected form.
    pub expected: &'static str,
}

impl RepositoryShape {
    /// The segments of `repository`, checked to be plain names (none empty, `.`, `..` or with
    /// control characters, so none can change a URL's shape) and as many as the shape says.
    pub fn split<'a>(&self, repository: &'a str) -> Result<Vec<&'a str>, InvalidRepository> {
        let invalid = || InvalidRepository {
            repository: repository.to_string(),
            expected: self.api_form,
        };
        let parts: Vec<&str> = repository.split('/').collect();
        let plain = parts
            .iter()
            .all(|p| !p.is_empty() && *p != "." && *p != ".." && !p.chars().any(char::is_control));
        let counted = match self.segments {
            Segments::Exactly(n) => parts.len() == n,
            Segments::AtLeast(n) => parts.len() >= n,
        };
        if plain && counted {
            Ok(parts)
        } else {
            Err(invalid())
        }
    }

    /// The two segments of a two-segment name (`owner/repository`).
    pub fn pair<'a>(&self, repository: &'a str) -> Result<[&'a str; 2], InvalidRepository> {
        let parts = self.split(repository)?;
        parts.try_into().map_err(|_| InvalidRepository {
            repository: repository.to_string(),
            expected: self.api_form,
        })
    }
}

/// Default pacing of status posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRateLimit {
    /// Posts per minute.
    pub per_minute: u32,
    /// Posts per hour.
    pub per_hour: u32,
    /// Requests in flight at once.
    pub concurrency: u32,
}

/// Everything the program knows about one forge kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForgeProfile {
    /// The kind described.
    pub kind: ForgeKind,
    /// The host assumed when the configuration gives none; `None` when it must be given.
    pub default_host: Option<&'static str>,
    /// The public service, if the forge has one.
    pub public: Option<PublicService>,
    /// The path after the host of a self-hosted API URL, for the configuration's example.
    pub self_hosted_api_path: &'static str,
    /// The credential kinds accepted, the first being the usual one.
    pub credentials: &'static [CredentialKind],
    /// How a token goes in the request.
    pub token_form: TokenForm,
    /// How the API names a repository.
    pub repository: RepositoryShape,
    /// The default pacing.
    pub rate_limit: DefaultRateLimit,
}

const OWNER_REPOSITORY: RepositoryShape = RepositoryShape {
    segments: Segments::Exactly(2),
    api_form: "owner/repository",
    clone_form: "owner/repository",
};

/// A polite default for forges that document no secondary limits.
const POLITE: DefaultRateLimit = DefaultRateLimit {
    per_minute: 120,
    per_hour: 3000,
    concurrency: 1,
};

/// One row per kind, in [`ForgeKind::ALL`] order.
pub const PROFILES: [ForgeProfile; 6] = [
    ForgeProfile {
        kind: ForgeKind::GitHub,
        default_host: Some("github.com"),
        public: Some(PublicService {
            host: "github.com",
            api_url: "https://api.github.com",
        }),
        self_hosted_api_path: "/api/v3",
        credentials: &[CredentialKind::Token, CredentialKind::GitHubApp],
        token_form: TokenForm::Bearer,
        repository: OWNER_REPOSITORY,
        // GitHub's documented secondary limits for content-creating requests.
        rate_limit: DefaultRateLimit {
            per_minute: 80,
            per_hour: 500,
            concurrency: 1,
        },
    },
    ForgeProfile {
        kind: ForgeKind::GitLab,
        default_host: Some("gitlab.com"),
        public: Some(PublicService {
            host: "gitlab.com",
            api_url: "https://gitlab.com",
        }),
        self_hosted_api_path: "",
        credentials: &[CredentialKind::Token],
        token_form: TokenForm::PrivateToken,
        repository: RepositoryShape {
            segments: Segments::AtLeast(2),
            api_form: "group[/subgroup...]/project",
            clone_form: "group[/subgroup...]/project",
        },
        rate_limit: POLITE,
    },
    ForgeProfile {
        kind: ForgeKind::BitbucketCloud,
        default_host: Some("bitbucket.org"),
        public: Some(PublicService {
            host: "bitbucket.org",
            api_url: "https://api.bitbucket.org",
        }),
        self_hosted_api_path: "",
        credentials: &[CredentialKind::Token, CredentialKind::Basic],
        token_form: TokenForm::Bearer,
        repository: RepositoryShape {
            segments: Segments::Exactly(2),
            api_form: "workspace/repository",
            clone_form: "owner/repository",
        },
        // Bitbucket Cloud's hourly budget, with headroom.
        rate_limit: DefaultRateLimit {
            per_minute: 60,
            per_hour: 900,
            concurrency: 1,
        },
    },
    ForgeProfile {
        kind: ForgeKind::BitbucketServer,
        default_host: None,
        public: None,
        self_hosted_api_path: "",
        credentials: &[CredentialKind::Token, CredentialKind::Basic],
        token_form: TokenForm::Bearer,
        repository: RepositoryShape {
            segments: Segments::Exactly(2),
            api_form: "PROJECT/repository",
            clone_form: "/scm/PROJECT/slug or PROJECT/slug",
        },
        rate_limit: POLITE,
    },
    ForgeProfile {
        kind: ForgeKind::AzureDevOps,
        default_host: Some("dev.azure.com"),
        public: Some(PublicService {
            host: "dev.azure.com",
            api_url: "https://dev.azure.com",
        }),
        self_hosted_api_path: "",
        credentials: &[CredentialKind::Token],
        token_form: TokenForm::BasicEmptyUser,
        repository: RepositoryShape {
            segments: Segments::AtLeast(3),
            api_form: "org/project/repository",
            clone_form: "org/project/_git/repository",
        },
        rate_limit: POLITE,
    },
    ForgeProfile {
        kind: ForgeKind::Gitea,
        // Self-hosted as a rule; Codeberg is recognised but never assumed.
        default_host: None,
        public: Some(PublicService {
            host: "codeberg.org",
            api_url: "https://codeberg.org",
        }),
        self_hosted_api_path: "",
        credentials: &[CredentialKind::Token, CredentialKind::Basic],
        token_form: TokenForm::Token,
        repository: OWNER_REPOSITORY,
        rate_limit: POLITE,
    },
];

impl ForgeKind {
    /// This kind's row of [`PROFILES`].
    pub fn profile(self) -> &'static ForgeProfile {
        match self {
            ForgeKind::GitHub => &PROFILES[0],
            ForgeKind::GitLab => &PROFILES[1],
            ForgeKind::BitbucketCloud => &PROFILES[2],
            ForgeKind::BitbucketServer => &PROFILES[3],
            ForgeKind::AzureDevOps => &PROFILES[4],
            ForgeKind::Gitea => &PROFILES[5],
        }
    }

    /// The forge that runs a well-known public host, if any.
    pub fn for_public_host(host: &str) -> Option<ForgeKind> {
        PROFILES
            .iter()
            .find(|p| p.public.is_some_and(|s| s.host == host))
            .map(|p| p.kind)
    }

    /// The API base URL of the public service for a well-known host.
    pub fn public_api_url(self, host: &str) -> Option<&'static str> {
        self.profile()
            .public
            .filter(|s| s.host == host)
            .map(|s| s.api_url)
    }

    /// Whether this kind accepts `credential`.
    pub fn accepts(self, credential: CredentialKind) -> bool {
        self.profile().credentials.contains(&credential)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_row() {
        for kind in ForgeKind::ALL {
            assert_eq!(kind.profile().kind, kind);
        }
    }

    #[test]
    fn public_hosts_name_their_forge_and_api() {
        let found: Vec<_> = [
            "github.com",
            "gitlab.com",
            "bitbucket.org",
            "dev.azure.com",
            "codeberg.org",
            "git.example.com",
        ]
        .into_iter()
        .map(|h| ForgeKind::for_public_host(h).map(|k| (k, k.public_api_url(h))))
        .collect();
        assert_eq!(
            found,
            vec![
                Some((ForgeKind::GitHub, Some("https://api.github.com"))),
                Some((ForgeKind::GitLab, Some("https://gitlab.com"))),
                Some((ForgeKind::BitbucketCloud, Some("https://api.bitbucket.org"))),
                Some((ForgeKind::AzureDevOps, Some("https://dev.azure.com"))),
                Some((ForgeKind::Gitea, Some("https://codeberg.org"))),
                None,
            ]
        );
        assert_eq!(ForgeKind::GitHub.public_api_url("github.example.com"), None);
    }

    #[test]
    fn gitea_and_bitbucket_server_have_no_default_host() {
        let defaults: Vec<_> = ForgeKind::ALL
            .into_iter()
            .map(|k| k.profile().default_host)
            .collect();
        assert_eq!(
            defaults,
            vec![
                Some("github.com"),
                Some("gitlab.com"),
                Some("bitbucket.org"),
                None,
                Some("dev.azure.com"),
                None
            ]
        );
    }

    #[test]
    fn basic_credentials_are_for_bitbucket_and_gitea_and_apps_for_github() {
        let basic: Vec<_> = ForgeKind::ALL
            .into_iter()
            .filter(|k| k.accepts(CredentialKind::Basic))
            .collect();
        assert_eq!(
            basic,
            vec![
                ForgeKind::BitbucketCloud,
                ForgeKind::BitbucketServer,
                ForgeKind::Gitea
            ]
        );
        let apps: Vec<_> = ForgeKind::ALL
            .into_iter()
            .filter(|k| k.accepts(CredentialKind::GitHubApp))
            .collect();
        assert_eq!(apps, vec![ForgeKind::GitHub]);
        assert!(
            ForgeKind::ALL
                .iter()
                .all(|k| k.accepts(CredentialKind::Token))
        );
    }

    #[test]
    fn repository_shapes_check_the_count_and_plain_names() {
        let github = ForgeKind::GitHub.profile().repository;
        assert_eq!(github.pair("acme/app"), Ok(["acme", "app"]));
        assert_eq!(
            github.pair("acme/sub/app").unwrap_err().to_string(),
            "repository `acme/sub/app` is not owner/repository"
        );
        let azure = ForgeKind::AzureDevOps.profile().repository;
        assert_eq!(azure.split("o/p/r/x"), Ok(vec!["o", "p", "r", "x"]));
        assert!(azure.split("o/r").is_err());
        assert!(azure.split("o/../r").is_err());
    }
}
