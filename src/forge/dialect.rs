//! A forge's dialect: how a neutral [`StatusUpdate`] becomes that forge's request, how its
//! read-back answers are read, and its state vocabulary. Pure: sending is a transport's job
//! ([`super::transport`]).

use super::answer::{Failure, ForgeResponse, ReadAnswer};
use super::read_back::{ReadBack, UnreadableAnswer};
use super::request::{Prepared, StatusRequest};
use crate::model::CommitState;
use crate::model::ForgeKind;
use crate::model::StatusUpdate;

/// `prepare`: the forge's request for an update (its states, limits and link), given the
/// forge's API URL. Fails with [`Failure::Invalid`] when the repository cannot be named there.
pub type PrepareFn = fn(&StatusUpdate, &str) -> Result<Prepared, Failure>;
/// `read_request`: the request reading page `page` (from 1) of what the forge shows.
pub type ReadRequestFn = fn(&StatusUpdate, u32) -> Result<StatusRequest, Failure>;
/// `read_back`: what page `page` of a read's answer says about the update's status.
pub type ReadBackFn = fn(&StatusUpdate, u32, &ReadAnswer) -> Result<ReadBack, UnreadableAnswer>;

/// How many pages a read-back may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pages {
    /// Paged lists of statuses.
    Many,
    /// One status per key: one page.
    One,
    /// The dialect reads nothing back.
    None,
}

/// One forge's commit-status API, as a table of pure functions.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    prepare: PrepareFn,
    read_request: ReadRequestFn,
    pages: Pages,
    read_back: ReadBackFn,
    already_current: fn(&StatusUpdate, &ForgeResponse) -> bool,
    interpret: fn(ForgeResponse) -> ForgeResponse,
}

impl Dialect {
    /// A dialect reading paged lists back, refusals meaning what they say.
    pub const fn new(
        prepare: PrepareFn,
        read_request: ReadRequestFn,
        read_back: ReadBackFn,
    ) -> Dialect {
        Dialect {
            prepare,
            read_request,
            pages: Pages::Many,
            read_back,
            already_current: |_, _| false,
            interpret: |response| response,
        }
    }

    /// With read-backs of `pages` pages.
    pub const fn pages(self, pages: Pages) -> Dialect {
        Dialect { pages, ..self }
    }

    /// With refusals that mean the forge already shows the update's state (GitLab's "Cannot
    /// transition status" between in-progress states).
    pub const fn already_current(
        self,
        already_current: fn(&StatusUpdate, &ForgeResponse) -> bool,
    ) -> Dialect {
        Dialect {
            already_current,
            ..self
        }
    }

    /// With answers read as the forge means them (Azure DevOps' sign-in page is a refused
    /// credential).
    pub const fn interpret(self, interpret: fn(ForgeResponse) -> ForgeResponse) -> Dialect {
        Dialect { interpret, ..self }
    }

    /// This dialect for the forge at `api_url`.
    pub fn at(&'static self, api_url: &str) -> ForgeDialect {
        ForgeDialect {
            dialect: self,
            api_url: api_url.trim_end_matches('/').to_string(),
        }
    }
}

/// A forge's dialect bound to its API URL.
#[derive(Debug, Clone)]
pub struct ForgeDialect {
    dialect: &'static Dialect,
    api_url: String,
}

impl ForgeDialect {
    /// The forge's request for `update`.
    pub fn prepare(&self, update: &StatusUpdate) -> Result<Prepared, Failure> {
        (self.dialect.prepare)(update, &self.api_url)
    }

    /// The request reading page `page` (from 1) of what the forge shows for `update`'s status;
    /// `None` when there is no such page.
    pub fn prepare_read(
        &self,
        update: &StatusUpdate,
        page: u32,
    ) -> Result<Option<StatusRequest>, Failure> {
        match self.dialect.pages {
            Pages::None => Ok(None),
            Pages::One if page > 1 => Ok(None),
            Pages::One | Pages::Many => (self.dialect.read_request)(update, page).map(Some),
        }
    }

    /// What page `page` of a read's answer says about `update`'s status.
    pub fn read_back(
        &self,
        update: &StatusUpdate,
        page: u32,
        answer: &ReadAnswer,
    ) -> Result<ReadBack, UnreadableAnswer> {
        (self.dialect.read_back)(update, page, answer)
    }

    /// Whether a refusal means the forge already shows `update`'s state.
    pub fn already_current(&self, update: &StatusUpdate, response: &ForgeResponse) -> bool {
        (self.dialect.already_current)(update, response)
    }

    /// The answer as the forge means it.
    pub fn interpret(&self, response: ForgeResponse) -> ForgeResponse {
        (self.dialect.interpret)(response)
    }
}

/// The two segments of `kind`'s two-segment repository name (`owner/repository`).
pub(crate) fn repository_pair(kind: ForgeKind, repository: &str) -> Result<[&str; 2], Failure> {
    Ok(kind.profile().repository.pair(repository)?)
}

/// The segments of `kind`'s repository name, as many as its shape allows.
pub(crate) fn repository_segments(kind: ForgeKind, repository: &str) -> Result<Vec<&str>, Failure> {
    Ok(kind.profile().repository.split(repository)?)
}

/// The update's description; for a canceled update on a forge without a canceled state, one
/// that says the commit was superseded.
pub(crate) fn state_description(update: &StatusUpdate) -> String {
    let text = update.description.trim();
    if update.state != CommitState::Canceled || text.to_lowercase().contains("superseded") {
        return text.to_string();
    }
    if text.is_empty() {
        "superseded".to_string()
    } else {
        format!("superseded: {text}")
    }
}

/// The body GitHub and Gitea share: `state`, `context`, `description` (saying superseded for
/// a canceled update) and, when given, `target_url`.
pub(crate) fn context_status_body(
    update: &StatusUpdate,
    state: &str,
    limits: (usize, usize),
) -> serde_json::Value {
    let (context_limit, description_limit) = limits;
    let mut body = serde_json::json!({
        "state": state,
        "context": super::text::fit_context(&update.key.context, context_limit),
        "description": super::text::truncate_chars(&state_description(update), description_limit),
    });
    if let Some(url) = &update.target_url {
        body["target_url"] = serde_json::json!(url);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::tests::update;

    #[test]
    fn segments_must_be_plain_names() {
        assert_eq!(
            repository_pair(ForgeKind::GitHub, "acme/app").unwrap(),
            ["acme", "app"]
        );
        for bad in [
            "acme/../x",
            "acme//x",
            "acme/app/",
            "acme",
            "a/b/c",
            "acme/\u{7}",
        ] {
            assert!(
                repository_pair(ForgeKind::GitHub, bad).is_err(),
                "{bad:?} accepted"
            );
        }
        assert_eq!(
            repository_segments(ForgeKind::GitLab, "g/s/p").unwrap(),
            vec!["g", "s", "p"]
        );
    }

    #[test]
    fn superseded_is_said_once() {
        let mut u = update("h", "a/b", CommitState::Canceled);
        u.description = "Superseded by abc1234".into();
        assert_eq!(state_description(&u), "Superseded by abc1234");
        u.description = String::new();
        assert_eq!(state_description(&u), "superseded");
        u.state = CommitState::Failure;
        assert_eq!(state_description(&u), "");
    }

    const ONE_PAGE: Dialect = Dialect::new(
        |_, _| Ok(Prepared::Unnecessary("test")),
        |_, page| Ok(StatusRequest::get(format!("/page/{page}"))),
        |_, _, _| Ok(ReadBack::Nothing),
    )
    .pages(Pages::One);

    #[test]
    fn a_single_page_forge_has_no_second_page() {
        let u = update("h", "a/b", CommitState::Success);
        let dialect = ONE_PAGE.at("https://x/");
        assert_eq!(
            dialect.prepare_read(&u, 1),
            Ok(Some(StatusRequest::get("/page/1".into())))
        );
        assert_eq!(dialect.prepare_read(&u, 2), Ok(None));
    }
}
