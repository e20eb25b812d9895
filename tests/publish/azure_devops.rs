//! Azure DevOps Services and Server.

use flux_status_exporter::forge::DeliveryResult;
use flux_status_exporter::model::CommitState;
use serde_json::json;

use crate::common::{self, Case, SHA, publish_one};
use crate::read_back;
use crate::support::fake_forges::Reply;
use crate::support::fake_forges::azure_devops::AzureDevOpsFake;

const PAT: &str = "azdoTestPersonalAccessToken0123456789";

fn case() -> Case<AzureDevOpsFake> {
    Case {
        kind: "azuredevops",
        host: "dev.azure.com",
        repository: "acme/platform/app",
        token: PAT,
        fake: AzureDevOpsFake::new,
        api_path: "",
        credentials: |path| format!("{{token: {{file: {path}}}}}"),
        permanent: Reply::json(
            404,
            json!({"message": "TF401019: The Git repository with name or identifier app does not exist."}),
        ),
        permanent_error: "azuredevops answered 404: TF401019: The Git repository with name or identifier app does not exist.",
        created: 201,
        read_path: || {
            format!(
                "/acme/platform/_apis/git/repositories/app/commits/{SHA}/statuses?api-version=7.1&latestOnly=true&top=1000&skip=0"
            )
        },
    }
}

#[tokio::test]
async fn each_neutral_state_posts_the_exact_azure_devops_request() {
    let run = case().start().await;
    let updates: Vec<_> = common::STATES.iter().map(|s| case().update(*s)).collect();
    let outcomes = run.publishers.publish(&updates).await;
    assert!(
        outcomes
            .iter()
            .all(|o| o.result == DeliveryResult::Delivered),
        "{outcomes:?}"
    );
    let requests = run.fake.requests();
    assert_eq!(requests.len(), 4);
    let states = ["pending", "succeeded", "failed", "error"];
    // base64(":" + PAT): Azure DevOps takes a PAT as a password with an empty user.
    use base64::Engine;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(":{PAT}"))
    );
    for ((request, update), state) in requests.iter().zip(&updates).zip(states) {
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.path,
            format!(
                "/acme/platform/_apis/git/repositories/app/commits/{SHA}/statuses?api-version=7.1"
            )
        );
        assert_eq!(request.header("authorization"), Some(auth.as_str()));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.body,
            json!({
                "state": state,
                "description": update.description,
                "context": {"genre": "flux/prod/Kustomization/flux-system", "name": "apps"},
            })
        );
    }
}

#[tokio::test]
async fn a_server_collection_path_stays_in_front_of_the_api_path() {
    let server = Case {
        host: "tfs.example.com",
        repository: "tfs/DefaultCollection/Platform/app",
        ..case()
    };
    let run = server.start().await;
    let mut update = server.update(CommitState::Success);
    update.target_url = Some("https://grafana.example.com/d/flux".into());
    let outcome = publish_one(&run.publishers, update).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered, "{outcome:?}");
    let request = &run.fake.requests()[0];
    assert_eq!(
        request.path,
        format!(
            "/tfs/DefaultCollection/Platform/_apis/git/repositories/app/commits/{SHA}/statuses?api-version=7.1"
        )
    );
    assert_eq!(
        request.body["targetUrl"],
        "https://grafana.example.com/d/flux"
    );
}

#[tokio::test]
async fn long_multibyte_text_is_cut_to_255_characters() {
    let run = case().start().await;
    let mut update = case().update(CommitState::Failure);
    update.description = "ø".repeat(300);
    let outcome = publish_one(&run.publishers, update).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(
        run.fake.requests()[0].body["description"].as_str().unwrap(),
        format!("{}…", "ø".repeat(254))
    );
}

#[tokio::test]
async fn a_pat_answered_with_the_sign_in_page_is_refused_not_delivered() {
    let run = case().start().await;
    run.fake.with(|f| f.pat = "a-different-pat".into());
    let outcome = publish_one(&run.publishers, case().update(CommitState::Success)).await;
    assert_eq!(
        outcome.result,
        DeliveryResult::RetryLater {
            error: "azuredevops answered 401: the sign-in page came back (203): the PAT was not accepted (the credential is not used again for 60s)".into()
        }
    );
    assert_eq!(outcome.attempts, 2);
}

#[tokio::test]
async fn azure_devops_retries_a_server_error_then_delivers() {
    common::retries_a_server_error_then_delivers(case()).await;
}

#[tokio::test]
async fn azure_devops_waits_as_long_as_retry_after_says() {
    common::waits_as_long_as_the_rate_limit_says(case()).await;
}

#[tokio::test]
async fn azure_devops_does_not_retry_a_missing_repository() {
    common::does_not_retry_a_permanent_error(case()).await;
}

#[tokio::test]
async fn azure_devops_never_receives_statuses_for_other_hosts_or_repositories() {
    common::never_sends_to_an_unconfigured_host(case()).await;
}

#[tokio::test]
async fn azure_devops_pat_stays_out_of_errors_and_logs() {
    common::keeps_the_credential_out_of_errors_and_logs(case()).await;
}

#[tokio::test]
async fn azure_devops_pat_in_any_form_and_cut_stays_out_of_errors_and_logs() {
    common::keeps_every_form_of_the_credential_out_at_every_cut(case()).await;
}

#[tokio::test]
async fn azure_devops_read_back_finding_the_same_status_posts_nothing() {
    read_back::skips_the_post_when_the_forge_already_shows_it(case()).await;
}

#[tokio::test]
async fn azure_devops_read_back_finding_another_state_or_description_posts() {
    read_back::posts_when_the_forge_shows_something_else(case()).await;
}

#[tokio::test]
async fn azure_devops_read_back_that_fails_still_posts() {
    read_back::still_posts_when_the_read_fails(case()).await;
}

#[tokio::test]
async fn azure_devops_reads_nothing_back_without_the_flag_or_with_a_ledger_record() {
    read_back::never_reads_without_the_flag_or_with_a_ledger_record(case()).await;
}

#[tokio::test]
async fn azure_devops_reads_success_answers_of_200_kb() {
    read_back::reads_success_answers_of_200_kb(case()).await;
}

#[tokio::test]
async fn azure_devops_refuses_for_good_when_the_error_document_is_100_kb() {
    common::refuses_for_good_when_the_error_document_is_100_kb(case()).await;
}
