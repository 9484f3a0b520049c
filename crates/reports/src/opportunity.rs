//! Where to shift next: every service's channel-shift opportunity over the
//! year to a date, ranked, from the rollups (the maths and its rules are
//! `channelshift_kpi::opportunity`'s).

use crate::error::ReportError;
use crate::policy::Policy;
use channelshift_contract::{ChannelClass, CouncilCode, Instrument};
use channelshift_kpi::catalogue::Headline;
use channelshift_kpi::cost::Pence;
use channelshift_kpi::opportunity::{self, Opportunity, OpportunityRules, ServiceYear};
use channelshift_kpi::satisfaction::{satisfaction, Satisfaction, ScoreCount};
use channelshift_kpi::Rate;
use channelshift_store::{Bucket, CellFilter, Keys, SatisfactionCell, Source, Store};
use chrono::{Days, Months, NaiveDate};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The ranked opportunities of one council over one year.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpportunityReport {
    pub council: String,
    pub council_name: String,
    /// The year the volumes are taken over: `to` and the 364 or 365 days before it.
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// When ingest last stored a batch (in the API's answer; a pack states its own as-of).
    #[schema(format = DateTime)]
    pub as_of: Option<String>,
    /// The satisfaction measure compared: the share of respondents positive
    /// on the council's headline instrument.
    pub instrument: String,
    #[schema(value_type = Object)]
    pub rules: OpportunityRules,
    /// Ranked: recommended shifts by saving, then those not recommended, then the rest.
    #[schema(value_type = Vec<Object>)]
    pub services: Vec<Opportunity>,
    /// Each service's line in plain English, in the same order.
    pub sentences: Vec<String>,
    /// Σ of the recommended services' annual savings, in pence.
    #[schema(value_type = i64)]
    pub recommended_saving: Pence,
    /// Every assumption the figures rest on.
    pub assumptions: Vec<String>,
}

/// The share of `cells`' respondents positive on `instrument`:
/// satisfied (csat5 4–5), good (govmetric3), promoters (nps11 9–10) or easy (ces7 5–7).
fn positive(instrument: Instrument, cells: &[&SatisfactionCell]) -> Rate {
    let mut scores: BTreeMap<u8, u64> = BTreeMap::new();
    for cell in cells {
        *scores.entry(cell.score).or_default() += cell.responses;
    }
    let counts: Vec<ScoreCount> = scores
        .into_iter()
        .map(|(score, responses)| ScoreCount { score, responses })
        .collect();
    match satisfaction(instrument, &counts) {
        Ok(Satisfaction::Csat5 { satisfied: rate })
        | Ok(Satisfaction::Govmetric3 { good: rate, .. })
        | Ok(Satisfaction::Nps11 {
            promoters: rate, ..
        })
        | Ok(Satisfaction::Ces7 { easy: rate }) => rate,
        // The store holds scores its instrument allows; none is a count of 0.
        Err(_) => Rate::new(0, 0),
    }
}

/// The first day of the year that ends on `to`: the day after `to`, twelve
/// months earlier.
pub fn year_to(to: NaiveDate) -> Option<NaiveDate> {
    to.checked_add_days(Days::new(1))?
        .checked_sub_months(Months::new(12))
}

/// Every service's opportunity over the year to `to`, priced at the unit
/// costs in force on `to`.
pub async fn opportunities(
    store: &Store,
    policy: &Policy,
    council: &CouncilCode,
    to: NaiveDate,
    source: Source,
) -> Result<OpportunityReport, ReportError> {
    let from = year_to(to).ok_or_else(|| ReportError::bad("date", "out of range"))?;
    let instrument_name = match policy.satisfaction {
        Headline::Measure { instrument, .. } => instrument,
        _ => "csat5",
    };
    let instrument: Instrument = instrument_name
        .parse()
        .map_err(|_| ReportError::bad("satisfaction", "not an instrument"))?;
    let filter = CellFilter::new(council.clone(), from, to);
    let keys = Keys {
        service: true,
        customer_type: false,
        channel: true,
    };
    let contacts = store
        .contact_cells(&filter, Bucket::Total, keys, source)
        .await?;
    let responses = store
        .satisfaction_cells(
            &CellFilter {
                instrument: Some(instrument),
                ..filter.clone()
            },
            Bucket::Total,
            keys,
            source,
        )
        .await?;

    let by_service = crate::rows::contacts_by_service(&contacts);
    let classes = &policy.channel_classes;
    let services: Vec<ServiceYear> = by_service
        .into_iter()
        .filter(|(service, _)| !service.is_empty())
        .map(|(service, contacts)| {
            let of = |wanted: &dyn Fn(ChannelClass) -> bool| -> Vec<&SatisfactionCell> {
                responses
                    .iter()
                    .filter(|cell| {
                        cell.service.as_ref().map(|s| s.as_str()) == Some(service.as_str())
                    })
                    .filter(|cell| cell.channel.is_some_and(|c| wanted(classes.class_of(c))))
                    .collect()
            };
            let digital = of(&|class| class == ChannelClass::DigitalSelfService);
            let assisted = of(&|class| {
                matches!(
                    class,
                    ChannelClass::Telephone | ChannelClass::FaceToFace | ChannelClass::Paper
                )
            });
            ServiceYear {
                digital_satisfied: positive(instrument, &digital),
                assisted_satisfied: positive(instrument, &assisted),
                service,
                contacts,
            }
        })
        .collect();
    let ranked = opportunity::opportunities(
        &services,
        classes,
        &policy.unit_costs,
        to,
        &policy.opportunity,
        &policy.suppression,
    );
    let sentences = ranked
        .services
        .iter()
        .map(|service| service.sentence(&service_words(&service.service)))
        .collect();
    Ok(OpportunityReport {
        council: council.to_string(),
        council_name: policy.label(council.as_str()),
        from,
        to,
        as_of: None,
        instrument: instrument.to_string(),
        assumptions: assumptions(&policy.opportunity, from, to),
        rules: ranked.rules,
        recommended_saving: ranked.recommended_saving,
        services: ranked.services,
        sentences,
    })
}

/// A service's slug in words: `council-tax` → "council tax".
pub fn service_words(slug: &str) -> String {
    slug.replace(['-', '_'], " ")
}

/// The assumptions behind every figure, in plain English.
pub fn assumptions(rules: &OpportunityRules, from: NaiveDate, to: NaiveDate) -> Vec<String> {
    let benchmark = match rules.target_assisted_share {
        Some(share) => format!(
            "Each service's benchmark is the configured target assisted share, {:.0}%.",
            share * 100.0
        ),
        None => format!(
            "Each service's benchmark is the best quartile (25th percentile) of the assisted shares of the council's services whose volume is within {}× of its own, itself included; with fewer than {} such services there is no benchmark.",
            rules.peer_volume_ratio, rules.min_peers
        ),
    };
    vec![
        format!("Volumes are every contact from {from} to {to}, a year, and are assumed to recur next year."),
        "Assisted contact is telephone, face-to-face and paper (the council's channel classes); digital assisted and other channels are left where they are.".to_string(),
        benchmark,
        "Moved contacts leave the service's assisted channels in proportion to its assisted mix and arrive on its digital self-service channels in proportion to their mix, or on the web where it has none.".to_string(),
        format!("Each moved contact saves the difference between the service's mean assisted and mean digital unit cost, at the unit costs in force on {to}; unit costs describe simple contacts, not whole transactions, and a moved contact is assumed to cost what an existing digital one does (no failed digital attempts)."),
        format!(
            "A shift is not recommended where the share of digital respondents satisfied is more than {} points below the share of assisted respondents satisfied; satisfaction resting on too few responses to publish is not compared.",
            rules.satisfaction_gap_points
        ),
    ]
}
