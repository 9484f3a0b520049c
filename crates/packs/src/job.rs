//! `channelshift-packs render`: one [`Job`] in, one file out (see
//! [`channelshift_reports::job`]).

use crate::{render, Packs, RenderError};
use channelshift_contract::CouncilCode;
use channelshift_kpi::period::Period;
use channelshift_reports::calendar::{Calendar, PacksConfig};
pub use channelshift_reports::job::{Connection, Failure, Job};
use channelshift_reports::pack::{build, Format, Scope};
use channelshift_reports::{Councils, Policy};
use channelshift_store::{CutOff, Store};

impl From<RenderError> for Failure {
    fn from(error: RenderError) -> Self {
        match error {
            RenderError::Unavailable(message) => Failure::Unavailable { message },
            RenderError::Failed(message) => Failure::Internal { message },
        }
    }
}

fn internal(message: impl ToString) -> Failure {
    Failure::Internal {
        message: message.to_string(),
    }
}

/// Computes and renders the job's pack.
pub async fn run(job: Job) -> Result<Vec<u8>, Failure> {
    let format = job
        .format
        .parse::<Format>()
        .ok()
        .ok_or_else(|| internal(format!("unknown format {:?}", job.format)))?;
    let council = CouncilCode::parse(&job.council).ok_or_else(|| Failure::BadRequest {
        parameter: "council".into(),
        message: CouncilCode::RULE.into(),
    })?;
    let period = Period::containing(job.period, job.date).map_err(|error| Failure::BadRequest {
        parameter: "date".into(),
        message: error.to_string(),
    })?;
    let store = Store::connect(&job.clickhouse.into())
        .await
        .map_err(|error| Failure::StoreUnavailable {
            message: error.to_string(),
        })?
        .limited(&job.query);
    let store = match job.query_id_prefix {
        Some(prefix) => store.tagged(prefix),
        None => store,
    };
    let packs = Packs {
        store,
        councils: Councils::single(Policy::new(&job.kpi).map_err(internal)?),
        calendar: Calendar::default(),
        pdf: crate::pdf::PdfSettings::new(&PacksConfig {
            chromium: job.chromium,
            pdf_timeout_seconds: job.pdf_timeout_seconds,
            ..PacksConfig::default()
        })
        .temporary_files_in(job.work_dir),
    };
    let pack = build(
        &packs.store,
        packs.councils.default_policy(),
        Scope {
            council: &council,
            period,
            as_of: CutOff(job.as_of),
            previous_as_of: job.previous_as_of.map(CutOff),
        },
    )
    .await?;
    Ok(render(&pack, format, &packs.pdf).await?)
}
