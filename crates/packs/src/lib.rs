//! Committee packs as scrutiny committees receive them — tidy CSV with CSVW
//! metadata (`csv`), ODS and XLSX workbooks (`workbook`), an accessible HTML
//! report (`html`) and its PDF (`pdf`) — produced one at a time or for every
//! meeting of the reporting calendar that is due (`produce`). The figures
//! are the reports crate's ([`channelshift_reports::pack`]); this crate only
//! writes them out, in its own process (`channelshift-packs`), so Chromium
//! and the spreadsheet writers never run inside the API.

mod csv;
mod html;
pub mod job;
pub mod pdf;
pub mod produce;
mod words;
mod workbook;

use channelshift_reports::calendar::Calendar;
pub use channelshift_reports::pack::*;
use channelshift_reports::Councils;
use channelshift_store::Store;

/// What producing packs needs: the store, each council's policy, the
/// reporting calendar and the PDF printer.
pub struct Packs {
    pub store: Store,
    /// Each council's settings.
    pub councils: Councils,
    pub calendar: Calendar,
    pub pdf: pdf::PdfSettings,
}

/// Why a pack could not be written out.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The PDF printer is missing or busy: say so, try later.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

/// Renders the pack in `format`.
pub async fn render(
    pack: &Pack,
    format: Format,
    pdf: &pdf::PdfSettings,
) -> Result<Vec<u8>, RenderError> {
    Ok(match format {
        Format::Csv => csv::csv(pack).into_bytes(),
        Format::Csvw => serde_json::to_string_pretty(&csv::csvw(pack))
            .unwrap_or_default()
            .into_bytes(),
        Format::Xlsx => workbook::xlsx(pack).map_err(RenderError::Failed)?,
        Format::Ods => workbook::ods(pack).map_err(RenderError::Failed)?,
        Format::Html => html::report(pack).into_bytes(),
        Format::Pdf => {
            pdf::render(&html::report(pack), pdf)
                .await
                .map_err(|error| match error {
                    pdf::PdfError::Unavailable(message) => RenderError::Unavailable(message),
                    other => RenderError::Failed(other.to_string()),
                })?
        }
    })
}
