//! One KPI's rows for a request: the cells it needs, read from the store,
//! and the rows computed from them under the council's policy.

use crate::error::ReportError;
use crate::policy::Policy;
use crate::request::KpiRequest;
use crate::rows::{self, Report};
use channelshift_contract::Channel;
use channelshift_kpi::catalogue::{GroupKey, Kpi};
use channelshift_kpi::channel::ContactsByChannel;
use channelshift_store::{Area, Bucket, CellFilter, Keys, Source, Store};
use std::collections::BTreeMap;

/// Reads the cells `kpi` needs for `request` from `source` and computes its rows.
pub async fn compute(
    store: &Store,
    policy: &Policy,
    kpi: Kpi,
    request: &KpiRequest,
    source: Source,
) -> Result<Report, ReportError> {
    let bucket = request.grouping.bucket();
    let keys = Keys {
        service: request.groups(GroupKey::Service),
        customer_type: request.groups(GroupKey::CustomerType),
        channel: request.groups(GroupKey::Channel) || request.groups(GroupKey::ChannelClass),
    };
    let contacts = || store.contact_cells(&request.filter, bucket, keys, source);
    Ok(match kpi {
        Kpi::DigitalTakeUp => rows::digital_take_up_rows(request, policy, &contacts().await?),
        Kpi::ChannelMix => rows::channel_mix_rows(request, policy, &contacts().await?),
        Kpi::CompletionRate => rows::completion_rate_rows(request, policy, &contacts().await?),
        Kpi::CostPerTransaction => {
            // A unit cost changing inside the range: each day at its own cost.
            let dated = policy
                .unit_costs
                .changes_within(request.filter.from, request.filter.to);
            let cells = if dated {
                store
                    .contact_cells(&request.filter, Bucket::Day, keys, source)
                    .await?
            } else {
                contacts().await?
            };
            rows::cost_per_transaction_rows(request, policy, &cells, dated)
        }
        Kpi::AvoidableContact => rows::avoidable_contact_rows(request, policy, &contacts().await?),
        Kpi::FirstContactResolution => {
            let cells = store
                .journey_cells(
                    &request.filter,
                    bucket,
                    keys,
                    source,
                    policy.repeat_window_days,
                    judged_at(source),
                )
                .await?;
            rows::first_contact_resolution_rows(request, policy, &cells)
        }
        Kpi::FirstContactResolutionFlag => {
            rows::first_contact_resolution_flag_rows(request, policy, &contacts().await?)
        }
        Kpi::TelephoneWait | Kpi::TelephoneAbandonment => {
            let phone = CellFilter {
                channel: Some(Channel::Phone),
                ..request.filter.clone()
            };
            let by = Keys {
                channel: false,
                ..keys
            };
            let cells = store.wait_cells(&phone, bucket, by, source).await?;
            if kpi == Kpi::TelephoneWait {
                rows::telephone_wait_rows(request, policy, &cells)
            } else {
                rows::telephone_abandonment_rows(request, policy, &cells)
            }
        }
        Kpi::ResponseRate => {
            let responses = store
                .satisfaction_cells(&request.filter, bucket, keys, source)
                .await?;
            rows::response_rate_rows(request, policy, &contacts().await?, &responses)
        }
        Kpi::Satisfaction => {
            let cells = store
                .satisfaction_cells(&request.filter, bucket, keys, source)
                .await?;
            rows::satisfaction_rows(request, policy, &cells)
        }
        Kpi::EfficiencySavings => {
            let baseline = baseline_contacts(store, policy, &request.filter, source).await?;
            let by_service = Keys {
                service: true,
                ..keys
            };
            let dated = policy
                .unit_costs
                .changes_within(request.filter.from, request.filter.to);
            let bucket = if dated { Bucket::Day } else { bucket };
            let cells = store
                .contact_cells(&request.filter, bucket, by_service, source)
                .await?;
            rows::efficiency_savings_rows(request, policy, &cells, &baseline, dated)
        }
        Kpi::Hotspots => {
            let (area, name) = if request.groups(GroupKey::Lsoa) {
                (Area::Lsoa, "lsoa")
            } else {
                (Area::Ward, "ward")
            };
            let cells = store
                .area_cells(&request.filter, bucket, area, source)
                .await?;
            // By LSOA, each area's IMD decile from the council's lookup.
            let deciles = if area == Area::Lsoa {
                let mut lsoas: Vec<String> = cells
                    .iter()
                    .filter(|cell| !cell.area.is_empty())
                    .map(|cell| cell.area.clone())
                    .collect();
                lsoas.sort_unstable();
                lsoas.dedup();
                store.imd_deciles(&lsoas).await?
            } else {
                BTreeMap::new()
            };
            rows::hotspot_rows(request, policy, &cells, name, &deciles)
        }
    })
}

/// The instant a journey's repeat window must have ended by to be judged:
/// a pack's cut-off (so it reproduces), else now.
pub fn judged_at(source: Source) -> i64 {
    match source {
        Source::RawAsOf(cut_off) | Source::AsOf(cut_off, _) => cut_off.0,
        Source::Rollup | Source::Raw => chrono::Utc::now().timestamp(),
    }
}

/// Contacts per service and channel in the configured baseline period, under
/// the request's filters.
pub async fn baseline_contacts(
    store: &Store,
    policy: &Policy,
    filter: &CellFilter,
    source: Source,
) -> Result<BTreeMap<String, ContactsByChannel>, ReportError> {
    let baseline = policy.baseline.ok_or_else(|| {
        ReportError::bad(
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
    let cells = store
        .contact_cells(&baseline_filter, Bucket::Total, keys, source)
        .await?;
    Ok(rows::contacts_by_service(&cells))
}
