//! `GET /api/v1/exports/pack`: one committee pack, in one format. The
//! parameters are checked here; the pack is computed and written by
//! `channelshift-packs render`, a process of its own per pack, so Chromium
//! and the spreadsheet writers never run inside the API (and a request that
//! gives up takes its pack's process with it).

use crate::cancel::RequestQueries;
use crate::error::{ApiError, ErrorBody};
use crate::query::{self, PackQuery};
use crate::request;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use channelshift_kpi::period::{local_date, Period, PeriodKind};
use channelshift_reports::calendar::PacksConfig;
use channelshift_reports::job::{Connection, Failure, Job};
use channelshift_reports::pack::{file_stem, settled_as_of, Format};
use channelshift_store::{ClickHouseConfig, CutOff, QueryLimits, Store};
use chrono::{DateTime, NaiveDate, Utc};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

/// Runs `channelshift-packs render` for each pack asked for.
#[derive(Clone)]
pub struct Renderer {
    binary: PathBuf,
    /// Stops a dropped request's queries (see `cancel.rs`).
    store: Store,
    clickhouse: Connection,
    query: QueryLimits,
    chromium: PathBuf,
    pdf_timeout: Duration,
    /// PDF packs rendering at once (`packs.pdf_concurrency`).
    pdf_permits: Arc<Semaphore>,
    /// Packs of any format rendering at once (`packs.max_processes`).
    permits: Arc<Semaphore>,
}

/// Kills the pack's whole process group (the pack's process and any
/// Chromium it started) unless the pack finished: a request that gives up
/// (timeout, client gone) leaves nothing running.
struct ProcessGroup(Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(id) = self.0.and_then(|id| i32::try_from(id).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(id),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Renderer {
    pub fn new(
        store: &Store,
        clickhouse: &ClickHouseConfig,
        query: &QueryLimits,
        packs: &PacksConfig,
    ) -> Self {
        let binary = packs.binary.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .map(|exe| exe.with_file_name("channelshift-packs"))
                .unwrap_or_else(|_| PathBuf::from("channelshift-packs"))
        });
        Self {
            binary,
            store: store.clone(),
            clickhouse: clickhouse.into(),
            query: query.clone(),
            chromium: packs.chromium.clone(),
            pdf_timeout: Duration::from_secs(packs.pdf_timeout_seconds.max(1)),
            pdf_permits: Arc::new(Semaphore::new(packs.pdf_concurrency.max(1))),
            permits: Arc::new(Semaphore::new(packs.max_processes.max(1))),
        }
    }

    /// The pack's file, from a process of its own.
    async fn render(&self, order: Order) -> Result<Vec<u8>, ApiError> {
        let closed = |error: tokio::sync::AcquireError| ApiError::Internal(error.to_string());
        let _pdf_permit = match order.format {
            Format::Pdf => Some(
                tokio::time::timeout(self.pdf_timeout, self.pdf_permits.acquire())
                    .await
                    .map_err(|_| {
                        ApiError::Unavailable("the PDF renderer is busy; try again shortly".into())
                    })?
                    .map_err(closed)?,
            ),
            _ => None,
        };
        let _permit = self.permits.acquire().await.map_err(closed)?;
        // Removed when this request ends, after the process group is gone.
        let work = tempfile::Builder::new()
            .prefix("channelshift-pack-")
            .tempdir()
            .map_err(|error| ApiError::Internal(format!("a temporary folder: {error}")))?;
        // The pack's process tags its queries with this request's prefix;
        // dropping the request before the process ends stops them.
        let queries = RequestQueries::new(&self.store);
        let job = Job {
            clickhouse: self.clickhouse.clone(),
            query: self.query.clone(),
            kpi: order.settings,
            chromium: self.chromium.clone(),
            pdf_timeout_seconds: self.pdf_timeout.as_secs(),
            work_dir: work.path().to_path_buf(),
            council: order.council,
            period: order.kind,
            date: order.date,
            as_of: order.as_of.0,
            previous_as_of: order.previous_as_of.map(|at| at.0),
            format: order.format.as_str().to_string(),
            query_id_prefix: Some(queries.prefix().to_string()),
        };
        let job =
            serde_json::to_vec(&job).map_err(|error| ApiError::Internal(error.to_string()))?;
        let mut child = tokio::process::Command::new(&self.binary)
            .arg("render")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                ApiError::Unavailable(format!(
                    "packs are rendered by {}, which could not be started ({error}); set packs.binary",
                    self.binary.display()
                ))
            })?;
        let mut group = ProcessGroup(child.id());
        let stdin = child.stdin.take();
        // The job is written while the output is read, so neither side can
        // wait on a full pipe; a write cut short means the process ended,
        // and its own account (standard error) says why.
        let send = async move {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(&job).await;
            }
        };
        let ((), output) = tokio::join!(send, child.wait_with_output());
        // The process has ended: none of its queries runs on.
        queries.answered();
        let output =
            output.map_err(|error| ApiError::Internal(format!("the pack's process: {error}")))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            group.0 = None;
            if !stderr.trim().is_empty() {
                tracing::debug!(log = %stderr.trim(), "the pack's process");
            }
            return Ok(output.stdout);
        }
        let failure = stderr
            .lines()
            .last()
            .and_then(|line| serde_json::from_str::<Failure>(line).ok());
        Err(match failure {
            Some(Failure::BadRequest { parameter, message }) => {
                ApiError::BadRequest { parameter, message }
            }
            Some(Failure::StoreUnavailable { message }) => ApiError::Store(message),
            Some(Failure::TooLarge { message }) => {
                tracing::warn!(error = %message, "a pack's query met its limit");
                ApiError::TooLarge
            }
            Some(Failure::Unavailable { message }) => ApiError::Unavailable(message),
            Some(Failure::Internal { message }) => ApiError::Internal(message),
            None => {
                let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
                ApiError::Internal(format!(
                    "the pack's process exited ({}): {}",
                    output.status,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ))
            }
        })
    }
}

/// One pack, checked.
struct Order {
    council: String,
    /// The council's settings, which the pack is computed under.
    settings: channelshift_reports::policy::KpiSettings,
    kind: PeriodKind,
    date: NaiveDate,
    as_of: CutOff,
    previous_as_of: Option<CutOff>,
    format: Format,
}

/// The pack's as-of instant: given, or the latest settled one. An instant
/// less than `settle` seconds ago is refused: rows stamped before it may
/// still be on their way, so the pack could not be reproduced.
pub fn as_of(value: Option<&str>, settle: i64) -> Result<CutOff, ApiError> {
    let at = value.map(|text| parse_instant(text, "as_of")).transpose()?;
    Ok(settled_as_of(at, settle)?)
}

fn parse_instant(text: &str, parameter: &str) -> Result<i64, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.timestamp())
        .map_err(|_| ApiError::bad(parameter, "an RFC 3339 instant, e.g. 2026-10-05T09:00:00Z"))
}

/// The previous pack's as-of: given, else the calendar's latest meeting for
/// the council with an as-of before this one.
fn previous_as_of(
    state: &AppState,
    council: &str,
    as_of: CutOff,
    given: Option<&str>,
) -> Result<Option<CutOff>, ApiError> {
    match given {
        Some(text) => {
            let at = CutOff(parse_instant(text, "previous_as_of")?);
            if at >= as_of {
                return Err(ApiError::bad(
                    "previous_as_of",
                    "must be earlier than as_of",
                ));
            }
            Ok(Some(at))
        }
        None => Ok(state.calendar.previous_as_of(council, as_of)),
    }
}

/// A committee pack: every KPI for the period, in total and by breakdown,
/// with eight periods of trend and restatements since the previous pack, as
/// tidy CSV (RFC 4180) or its CSVW metadata, an XLSX or ODS workbook, an
/// accessible HTML report or its PDF; regenerating with the same `as_of`
/// gives the same figures (the same CSV bytes).
#[utoipa::path(
    get,
    path = crate::openapi::PACK_ROUTE,
    params(PackQuery),
    security(("bearer" = [])),
    responses(
        // Its media types, one per format, are added from `Format` (`openapi::Catalogue`).
        (status = 200, description = "The pack, in the format asked for"),
        (status = 400, description = "A parameter is missing or invalid", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 503, description = "The store, or Chromium for a PDF, cannot answer now", body = ErrorBody),
    )
)]
pub async fn get_pack(
    State(state): State<AppState>,
    RawQuery(params): RawQuery,
) -> Result<Response, ApiError> {
    let params: PackQuery = query::parse(params.as_deref())?;
    let council = request::council(params.council.as_ref())?;
    let kind = crate::scorecard::period_kind(params.period.as_ref())?;
    let date: NaiveDate = match params.date {
        Some(_) => request::date(params.date.as_ref(), "date")?,
        None => local_date(Utc::now()),
    };
    let period =
        Period::containing(kind, date).map_err(|error| ApiError::bad("date", error.to_string()))?;
    let policy = state.councils.policy(&council)?;
    let as_of = as_of(params.as_of.as_deref(), policy.pack_settle_seconds)?;
    let format_name = params.format.as_deref().unwrap_or("csv");
    let format: Format = format_name.parse().map_err(|_| {
        let names: Vec<&str> = Format::ALL.iter().map(|format| format.as_str()).collect();
        ApiError::bad("format", format!("one of {}", names.join(", ")))
    })?;
    let previous_as_of = previous_as_of(
        &state,
        council.as_str(),
        as_of,
        params.previous_as_of.as_deref(),
    )?;
    let body = state
        .packs
        .render(Order {
            council: council.to_string(),
            settings: policy.settings.clone(),
            kind,
            date,
            as_of,
            previous_as_of,
            format,
        })
        .await?;
    let disposition = if format == Format::Html {
        "inline"
    } else {
        "attachment"
    };
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "{disposition}; filename=\"{}{}\"",
                    file_stem(council.as_str(), &period),
                    format.suffix()
                ),
            ),
        ],
        body,
    )
        .into_response())
}
