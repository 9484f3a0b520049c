//! A committee pack is rendered by a `channelshift-packs` process of its own
//! (the API runs it): a request that gives up before the pack is done leaves
//! nothing behind, neither the pack's process nor the Chromium it started nor
//! their temporary files.

use anyhow::{Context, Result};
use channelshift_api::config::ServerLimits;
use channelshift_tests::api_process::{ApiOptions, ApiProcess};
use channelshift_tests::{eventually, Scope, API_TOKEN};
use reqwest::StatusCode;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A "Chromium" that notes its process id and its arguments, then hangs.
fn hanging_chromium(dir: &Path) -> Result<PathBuf> {
    let script = dir.join("chromium");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ > {dir}/pid\necho \"$@\" > {dir}/args\nexec sleep 120\n",
            dir = dir.display()
        ),
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    Ok(script)
}

/// Alive and not a zombie.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                != Some("Z")
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn a_pack_request_that_times_out_leaves_no_process_or_file_behind() -> Result<()> {
    let scope = Scope::new("pack-timeout");
    scope.store().await?.migrate().await?;
    let dir = tempfile::tempdir()?;
    let chromium = hanging_chromium(dir.path())?;
    let api = ApiProcess::api(
        "pack-timeout",
        &scope,
        &ApiOptions {
            limits: ServerLimits {
                request_timeout_ms: 4_000,
                ..ServerLimits::default()
            },
            chromium: Some(chromium),
            ..ApiOptions::default()
        },
    )
    .await?;

    let response = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/exports/pack?council=E07000041&period=quarter&date=2026-05-15&as_of=2026-07-01T00:00:00Z&format=pdf",
            api.base_url
        ))
        .bearer_auth(API_TOKEN)
        .timeout(Duration::from_secs(30))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    // The hanging printer was reached: the pack itself was computed.
    let pid: u32 = std::fs::read_to_string(dir.path().join("pid"))
        .context("the pack's process never started Chromium")?
        .trim()
        .parse()?;
    let args = std::fs::read_to_string(dir.path().join("args"))?;
    let profile = args
        .split_whitespace()
        .find_map(|arg| arg.strip_prefix("--user-data-dir="))
        .map(PathBuf::from)
        .context("Chromium's profile folder in its arguments")?;
    let work = profile
        .ancestors()
        .find(|folder| {
            folder
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("channelshift-pack-"))
        })
        .map(Path::to_path_buf)
        .context("the profile lies in the request's work folder")?;

    eventually("the printer is gone", Duration::from_secs(10), || async {
        Ok((!running(pid)).then_some(()))
    })
    .await?;
    eventually(
        "the work folder is removed",
        Duration::from_secs(10),
        || async { Ok((!work.exists()).then_some(())) },
    )
    .await?;
    drop(api);
    scope.drop_database().await?;
    Ok(())
}
