//! `GET /api/v1/kpi/{kpi}`: one KPI for a council over a range of local
//! dates, per period and per group. Parameters become domain values first
//! (`request`); cells come from the rollups (`store`); figures from `kpis`.

use crate::error::ApiError;
use crate::kpis::{self, KpiRow, Report};
use crate::request::{self, Accepts, FilterKey, GroupKey, KpiRequest};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use channelshift_store::{Area, Bucket, CellFilter, Keys, Source};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;

/// What the API says about one KPI: name, unit, definition, what it accepts.
pub struct KpiSpec {
    pub name: &'static str,
    pub unit: &'static str,
    pub definition: &'static str,
    pub accepts: Accepts,
}

use FilterKey as F;
use GroupKey as G;

const CONTACT_FILTERS: &[FilterKey] = &[F::Service, F::Channel, F::CustomerType];

pub const KPIS: &[KpiSpec] = &[
    KpiSpec {
        name: "digital-take-up",
        unit: "percent",
        definition: "Completed transactions (interaction transaction, outcome completed or ineligible) through digital self-service channels as a percentage of all completed transactions (GDS). Assisted digital counts as digital unless kpi.take_up_definition is gds_2014.",
        accepts: Accepts { group_by: &[G::Service, G::CustomerType], filters: CONTACT_FILTERS },
    },
    KpiSpec {
        name: "channel-mix",
        unit: "percent",
        definition: "Contacts (all interactions and outcomes) per channel, or per channel class, as a percentage of all contacts in the same period and group.",
        accepts: Accepts { group_by: &[G::Channel, G::ChannelClass, G::Service, G::CustomerType], filters: CONTACT_FILTERS },
    },
    KpiSpec {
        name: "satisfaction",
        unit: "percent",
        definition: "Per instrument, never averaged across instruments: csat5 % satisfied (4-5); govmetric3 % good and net (good - poor) / n; nps11 NPS (%9-10 - %0-6); ces7 % scoring 5-7. Percentages carry n and a 95% Wilson interval; net scores a normal-approximation interval.",
        accepts: Accepts {
            group_by: &[G::Channel, G::ChannelClass, G::Service, G::CustomerType],
            filters: &[F::Service, F::Channel, F::CustomerType, F::Instrument],
        },
    },
    KpiSpec {
        name: "completion-rate",
        unit: "percent",
        definition: "Transactions through digital self-service ending completed or ineligible, as a percentage of all such transactions started (completed, ineligible, abandoned, failed, transferred) (GDS).",
        accepts: Accepts { group_by: &[G::Channel, G::Service, G::CustomerType], filters: CONTACT_FILTERS },
    },
    KpiSpec {
        name: "cost-per-transaction",
        unit: "gbp",
        definition: "Sum of contacts times the unit cost of their channel (in force at the period's end), divided by completed transactions. Default unit costs are Socitm 2012's, which describe simple contacts, not whole transactions; numerator is the total cost in pence.",
        accepts: Accepts { group_by: &[G::ChannelClass, G::Service, G::CustomerType], filters: CONTACT_FILTERS },
    },
    KpiSpec {
        name: "efficiency-savings",
        unit: "gbp",
        definition: "Cost avoided by channel shift: for each service, current contacts times the sum over channels of (baseline share - current share) times unit cost, summed over services. Services without baseline contacts contribute nothing and are listed in notes.",
        accepts: Accepts { group_by: &[G::Service], filters: &[F::Service, F::CustomerType] },
    },
    KpiSpec {
        name: "avoidable-contact",
        unit: "percent",
        definition: "Contacts flagged avoidable (failure demand) as a percentage of contacts where the flag was given.",
        accepts: Accepts { group_by: &[G::Channel, G::ChannelClass, G::Service, G::CustomerType], filters: CONTACT_FILTERS },
    },
    KpiSpec {
        name: "first-contact-resolution",
        unit: "percent",
        definition: "Contacts resolved at the first contact as a percentage of contacts where the flag was given (each flagged contact stands for its journey).",
        accepts: Accepts { group_by: &[G::Channel, G::ChannelClass, G::Service, G::CustomerType], filters: CONTACT_FILTERS },
    },
    KpiSpec {
        name: "hotspots",
        unit: "percent",
        definition: "Per ward (or LSOA): digital take-up with n = completed transactions, all contacts, and rank (1 = lowest take-up, the hot spot of digital exclusion). Contacts without the area are left out.",
        accepts: Accepts { group_by: &[G::Ward, G::Lsoa], filters: &[F::Channel] },
    },
];

pub fn spec(name: &str) -> Option<&'static KpiSpec> {
    KPIS.iter().find(|spec| spec.name == name)
}

#[derive(Debug, Serialize)]
pub struct KpiResponse {
    pub kpi: &'static str,
    pub unit: &'static str,
    pub definition: &'static str,
    /// When ingest last stored a batch: the figures include everything ingested up to then.
    pub as_of: Option<String>,
    pub notes: Vec<String>,
    pub rows: Vec<KpiRow>,
}

pub fn as_of(seconds: Option<i64>) -> Option<String> {
    seconds
        .and_then(|seconds| DateTime::<Utc>::from_timestamp(seconds, 0))
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

pub async fn get_kpi(
    State(state): State<AppState>,
    Path(kpi): Path<String>,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<KpiResponse>, ApiError> {
    let spec = spec(&kpi).ok_or_else(|| {
        let known: Vec<&str> = KPIS.iter().map(|spec| spec.name).collect();
        ApiError::NotFound(format!(
            "unknown KPI {kpi:?}; available: {}",
            known.join(", ")
        ))
    })?;
    let Query(params) =
        params.map_err(|rejection| ApiError::bad("query", rejection.body_text()))?;
    let request = request::kpi_request(&params, &spec.accepts)?;
    // Read before the figures: they then include at least everything up to it.
    let latest = state.store.latest_ingest().await?;
    let report = compute(&state, spec.name, &request, Source::Rollup).await?;
    Ok(Json(KpiResponse {
        kpi: spec.name,
        unit: spec.unit,
        definition: spec.definition,
        as_of: as_of(latest),
        notes: report.notes,
        rows: report.rows,
    }))
}

/// Reads the cells `kpi` needs for `request` from `source` and computes its rows.
pub async fn compute(
    state: &AppState,
    kpi: &str,
    request: &KpiRequest,
    source: Source,
) -> Result<Report, ApiError> {
    let bucket = request.grouping.bucket();
    let keys = Keys {
        service: request.groups(GroupKey::Service),
        customer_type: request.groups(GroupKey::CustomerType),
        channel: request.groups(GroupKey::Channel) || request.groups(GroupKey::ChannelClass),
    };
    let store = &state.store;
    let contacts = || store.contact_cells(&request.filter, bucket, keys, source);
    Ok(match kpi {
        "digital-take-up" => kpis::digital_take_up_rows(request, state, &contacts().await?),
        "channel-mix" => kpis::channel_mix_rows(request, state, &contacts().await?),
        "completion-rate" => kpis::completion_rate_rows(request, state, &contacts().await?),
        "cost-per-transaction" => {
            kpis::cost_per_transaction_rows(request, state, &contacts().await?)
        }
        "avoidable-contact" => kpis::avoidable_contact_rows(request, state, &contacts().await?),
        "first-contact-resolution" => {
            kpis::first_contact_resolution_rows(request, state, &contacts().await?)
        }
        "satisfaction" => {
            let cells = store
                .satisfaction_cells(&request.filter, bucket, keys, source)
                .await?;
            kpis::satisfaction_rows(request, state, &cells)
        }
        "efficiency-savings" => {
            let baseline = baseline_contacts(state, &request.filter, source).await?;
            let by_service = Keys {
                service: true,
                ..keys
            };
            let cells = store
                .contact_cells(&request.filter, bucket, by_service, source)
                .await?;
            kpis::efficiency_savings_rows(request, state, &cells, &baseline)
        }
        "hotspots" => {
            let (area, name) = if request.groups(GroupKey::Lsoa) {
                (Area::Lsoa, "lsoa")
            } else {
                (Area::Ward, "ward")
            };
            let cells = store
                .area_cells(&request.filter, bucket, area, source)
                .await?;
            kpis::hotspot_rows(request, state, &cells, name)
        }
        other => return Err(ApiError::NotFound(format!("unknown KPI {other:?}"))),
    })
}

/// Contacts per service and channel in the configured baseline period, under
/// the request's filters.
pub async fn baseline_contacts(
    state: &AppState,
    filter: &CellFilter,
    source: Source,
) -> Result<
    std::collections::BTreeMap<String, channelshift_kpi::channel::ContactsByChannel>,
    ApiError,
> {
    let baseline = state.baseline.ok_or_else(|| {
        ApiError::bad(
            "kpi",
            "efficiency-savings needs a baseline period: set kpi.baseline in the API's configuration",
        )
    })?;
    let baseline_filter = CellFilter {
        from: baseline.from,
        to: baseline.to,
        ..filter.clone()
    };
    let keys = Keys {
        service: true,
        ..Keys::default()
    };
    let cells = state
        .store
        .contact_cells(&baseline_filter, Bucket::Total, keys, source)
        .await?;
    Ok(kpis::contacts_by_service(&cells))
}
