//! The report as PDF: the HTML printed by headless Chromium (Debian's
//! `chromium`), so the PDF has the report's real text, its title and its
//! headings as the document outline. At most `packs.pdf_concurrency`
//! Chromiums at a time per process, each bounded by
//! `packs.pdf_timeout_seconds` (the API also limits the PDF packs it runs at
//! once to that number).

use channelshift_reports::calendar::PacksConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// Chromium is missing or busy past the timeout: say so, try later.
    #[error("{0}")]
    Unavailable(String),
    #[error("printing the report to PDF failed: {0}")]
    Failed(String),
}

/// What rendering needs at run time.
#[derive(Clone, Debug)]
pub struct PdfSettings {
    pub chromium: PathBuf,
    pub timeout: Duration,
    permits: Arc<Semaphore>,
    /// Where Chromium's temporary folder goes; the system's by default.
    temp_root: Option<PathBuf>,
}

impl PdfSettings {
    pub fn new(config: &PacksConfig) -> Self {
        Self {
            chromium: config.chromium.clone(),
            timeout: Duration::from_secs(config.pdf_timeout_seconds.max(1)),
            permits: Arc::new(Semaphore::new(config.pdf_concurrency.max(1))),
            temp_root: None,
        }
    }

    /// Chromium's temporary folders go inside `root` (one the caller
    /// removes, even if this process is killed).
    pub fn temporary_files_in(mut self, root: PathBuf) -> Self {
        self.temp_root = Some(root);
        self
    }
}

/// Root cannot use Chromium's sandbox; anyone else keeps it.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .map(|line| line.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn chromium_args(dir: &Path, html: &Path, pdf: &Path) -> Vec<String> {
    let mut args = vec![
        "--headless".to_string(),
        "--disable-gpu".into(),
        // The report is self-contained: nothing to fetch, nothing to phone home.
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-dev-shm-usage".into(),
        format!("--user-data-dir={}", dir.join("profile").display()),
        "--no-pdf-header-footer".into(),
        "--generate-pdf-document-outline".into(),
        format!("--print-to-pdf={}", pdf.display()),
    ];
    if running_as_root() {
        args.push("--no-sandbox".into());
    }
    args.push(format!("file://{}", html.display()));
    args
}

/// Prints `html` to PDF.
pub async fn render(html: &str, settings: &PdfSettings) -> Result<Vec<u8>, PdfError> {
    if !settings.chromium.exists() {
        return Err(PdfError::Unavailable(format!(
            "PDF packs need Chromium at {} (packs.chromium); install Debian's chromium package",
            settings.chromium.display()
        )));
    }
    let _permit = tokio::time::timeout(settings.timeout, settings.permits.acquire())
        .await
        .map_err(|_| PdfError::Unavailable("the PDF renderer is busy; try again shortly".into()))?
        .map_err(|error| PdfError::Failed(error.to_string()))?;
    let mut folder = tempfile::Builder::new();
    folder.prefix("channelshift-pdf-");
    let dir = match &settings.temp_root {
        Some(root) => folder.tempdir_in(root),
        None => folder.tempdir(),
    }
    .map_err(|error| PdfError::Failed(format!("a temporary folder: {error}")))?;
    let html_path = dir.path().join("report.html");
    let pdf_path = dir.path().join("report.pdf");
    std::fs::write(&html_path, html)
        .map_err(|error| PdfError::Failed(format!("writing the report: {error}")))?;
    let mut command = tokio::process::Command::new(&settings.chromium);
    command
        .args(chromium_args(dir.path(), &html_path, &pdf_path))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(settings.timeout, command.output())
        .await
        .map_err(|_| {
            PdfError::Failed(format!(
                "Chromium did not finish within {} s",
                settings.timeout.as_secs()
            ))
        })?
        .map_err(|error| PdfError::Failed(format!("starting Chromium: {error}")))?;
    let pdf = std::fs::read(&pdf_path).map_err(|_| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        PdfError::Failed(format!(
            "Chromium exited ({}) without a PDF: {}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ))
    })?;
    if !pdf.starts_with(b"%PDF-") {
        return Err(PdfError::Failed(
            "Chromium wrote something that is not a PDF".into(),
        ));
    }
    Ok(pdf)
}
