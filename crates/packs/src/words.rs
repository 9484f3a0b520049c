//! The pack in plain English: period names, figures as people read them,
//! RAG in words and symbols, each KPI's definition and caveats, and the
//! headline sentence of each KPI's page. Shared by the workbooks and the report.

use crate::{Pack, Trend};
use channelshift_kpi::catalogue::{Kpi, Unit};
use channelshift_kpi::opportunity::Verdict;
use channelshift_kpi::period::{Period, PeriodKind};
use channelshift_kpi::rag::{Direction, Rag};

/// The title of the KPI's page.
pub fn title(kpi: Kpi) -> &'static str {
    kpi.spec().title
}

/// The pack's title, e.g. "Channel shift performance, 2025-26 Q1 (April to
/// June 2025): E07000041".
pub fn pack_title(pack: &Pack) -> String {
    format!(
        "Channel shift performance, {}: {}",
        period_name(&pack.period),
        pack.council_name
    )
}

/// What the KPI means, for a committee member rather than an analyst.
pub fn definition(kpi: Kpi) -> &'static str {
    kpi.spec().plain_english
}

/// What to bear in mind when reading a KPI.
pub fn caveats(pack: &Pack, kpi: Kpi) -> Vec<String> {
    let threshold = pack.settings.suppression_threshold;
    let mut caveats = vec![format!(
        "Figures resting on fewer than {threshold} cases are withheld and marked “withheld”, to protect individuals; they are never shown as zero. Where one figure of a breakdown is withheld, the next smallest is withheld too, so it cannot be worked out from the others and their total. A period with no cases says “no data”."
    )];
    let socitm = "Unit costs are Socitm's 2012 averages (face to face £8.62, telephone £2.83, online £0.15 per contact) unless the council has set its own; they describe simple contacts, not whole transactions.";
    match kpi {
        Kpi::DigitalTakeUp => caveats.push(format!(
            "Definition in use: {}.",
            if pack.settings.take_up_definition == "gds_2014" {
                "GDS 2014 (transactions completed online with staff help are not counted as digital)"
            } else {
                "current GDS guidance (online with staff help counts as digital)"
            }
        )),
        Kpi::Satisfaction => caveats.push(
            "The figure describes the customers who chose to answer, who may differ from those who did not (see the survey response rate). The range shown is a 95% confidence interval.".into(),
        ),
        Kpi::ResponseRate => caveats.push(
            "Answers are counted against all contacts of the same period, whatever the instrument; a customer may answer more than once, and an answer may rate a contact of an earlier period.".into(),
        ),
        Kpi::CostPerTransaction => caveats.push(socitm.into()),
        Kpi::EfficiencySavings => {
            caveats.push(socitm.into());
            caveats.push(match pack.settings.baseline {
                Some((from, to)) => format!(
                    "Baseline period: {} to {}. Savings are an estimate of cost avoided, not cash released.",
                    long_date(from),
                    long_date(to)
                ),
                None => "No baseline period is configured, so savings cannot be estimated.".into(),
            });
        }
        Kpi::FirstContactResolution => caveats.push(format!(
            "A request counts as resolved when the customer made no further contact about it within {} days of the first. Requests whose {}-day window had not yet ended, and contacts the source systems did not link to a request, are counted separately and never as resolved.",
            pack.settings.repeat_window_days, pack.settings.repeat_window_days
        )),
        Kpi::FirstContactResolutionFlag => caveats.push(
            "This is what staff and systems recorded at the time, contact by contact; it is not linked to later contacts about the same request.".into(),
        ),
        Kpi::TelephoneWait | Kpi::TelephoneAbandonment => caveats.push(
            "Only calls whose waiting time the telephone system recorded are counted.".into(),
        ),
        Kpi::Hotspots => caveats.push(
            "Contacts without a known ward are left out. Wards are shown by their ONS code.".into(),
        ),
        Kpi::ChannelMix | Kpi::CompletionRate | Kpi::AvoidableContact => {}
    }
    for (note_kpi, note) in &pack.notes {
        if *note_kpi == kpi {
            caveats.push(note.clone());
        }
    }
    caveats
}

fn month_name(date: chrono::NaiveDate) -> String {
    date.format("%B %Y").to_string()
}

pub fn long_date(date: chrono::NaiveDate) -> String {
    date.format("%-d %B %Y").to_string()
}

/// A period as a committee reads it, e.g. "2025-26 Q1 (April to June 2025)".
pub fn period_name(period: &Period) -> String {
    let (first, last) = (period.first_day(), period.last_day());
    match period.kind() {
        PeriodKind::Month => month_name(first),
        PeriodKind::FinancialQuarter => format!(
            "{} ({} to {})",
            period.label(),
            first.format("%B"),
            month_name(last)
        ),
        PeriodKind::FinancialYear => format!(
            "{} financial year ({} to {})",
            period.label(),
            month_name(first),
            month_name(last)
        ),
        _ => format!("{} to {}", long_date(first), long_date(last)),
    }
}

/// "this quarter", "this month", "this year".
pub fn this_period(period: &Period) -> &'static str {
    match period.kind() {
        PeriodKind::Month => "this month",
        PeriodKind::FinancialYear => "this financial year",
        _ => "this quarter",
    }
}

fn last_period(period: &Period) -> &'static str {
    match period.kind() {
        PeriodKind::Month => "last month",
        PeriodKind::FinancialYear => "last year",
        _ => "last quarter",
    }
}

/// A whole number with thousands separators.
pub use channelshift_runtime::text::grouped;

/// A figure as people read it: 46.2%, £2.83, £310,200.
pub fn figure(unit: Unit, value: f64) -> String {
    let sign = if value < 0.0 { "−" } else { "" };
    let magnitude = value.abs();
    match unit {
        Unit::Gbp if magnitude >= 1000.0 => {
            format!("{sign}£{}", grouped(magnitude.round() as u64))
        }
        Unit::Gbp => format!("{sign}£{magnitude:.2}"),
        Unit::Percent => format!("{sign}{magnitude:.1}%"),
        Unit::Points => format!("{sign}{magnitude:.1} points"),
        Unit::Seconds if magnitude >= 60.0 => {
            let seconds = magnitude.round() as u64;
            format!("{sign}{} min {:02} s", seconds / 60, seconds % 60)
        }
        Unit::Seconds => format!("{sign}{magnitude:.0} s"),
    }
}

/// A figure, or why there is none.
pub fn figure_or_reason(unit: Unit, value: Option<f64>, suppressed: bool) -> String {
    match value {
        Some(value) => figure(unit, value),
        None if suppressed => "withheld (too few cases)".into(),
        None => "no data".into(),
    }
}

/// RAG as a symbol and words, so it never rests on colour alone.
pub fn rag(rag: Rag) -> (&'static str, &'static str) {
    match rag {
        Rag::Green => ("✓", "Green: on target"),
        Rag::Amber => ("!", "Amber: close to target"),
        Rag::Red => ("✗", "Red: off target"),
    }
}

pub fn rag_word(rag: Rag) -> &'static str {
    match rag {
        Rag::Green => "green",
        Rag::Amber => "amber",
        Rag::Red => "red",
    }
}

pub fn direction(direction: Direction) -> &'static str {
    match direction {
        Direction::Improved => "better",
        Direction::Worsened => "worse",
        Direction::Unchanged => "no change",
        Direction::NoSignificantChange => "no significant change",
    }
}

/// "up from 43.1% last quarter", "down from …", "the same as …".
fn change(trend: &Trend, period: &Period) -> Option<String> {
    let now = trend.current()?.value?;
    let then = trend.previous()?.value?;
    let word = if (now - then).abs() < 0.05 {
        "the same as"
    } else if now > then {
        "up from"
    } else {
        "down from"
    };
    Some(format!(
        "{word} {} {}",
        figure(trend.unit, then),
        last_period(period)
    ))
}

/// The title of the packs' "where to shift next" section.
pub const OPPORTUNITY_TITLE: &str = "Where to shift next";

/// What the opportunities mean, in plain English.
pub const OPPORTUNITY_MEANING: &str = "For each service, how much a year the council would save if the share of its contacts made by telephone, face to face or on paper fell to that of the best quarter of the council's own services of a similar size (or to a target share the council sets), with the moved contacts made online instead. Services are ranked by that saving. A move is not recommended where people who used the service online were much less satisfied than those who used it by phone or in person.";

/// The opportunities' technical definition.
pub const OPPORTUNITY_DEFINITION: &str = "Over the year to the period's end (or to the pack's as-of day, if earlier), per service: V contacts, A of them assisted (telephone, face-to-face, paper classes). Benchmark share b: the configured target, else the 25th percentile (linear interpolation) of the assisted shares of the services with volume within the peer ratio of V (at least the minimum number of peers). Moved contacts M = round(A − b × V) when positive. Saving a year = M × (Σ assisted contacts × unit cost ÷ A − Σ digital self-service contacts × unit cost ÷ their number, or the web's unit cost where there are none), at the unit costs in force on the year's last day, rounded once to the penny. Not recommended when both satisfaction shares rest on at least the suppression threshold of responses and the digital one is more than the configured gap below the assisted one.";

/// The title of the packs' year-end forecasts.
pub const FORECAST_TITLE: &str = "Year-end forecast";

/// What the forecasts mean, in plain English.
pub const FORECAST_MEANING: &str = "Where each headline measure is likely to stand at the end of the financial year if it carries on as its monthly history runs, with the ranges it should fall within 80 and 95 times out of 100. Each forecast is checked against the past: the same forecast made from every earlier month is compared with what then happened, and its average miss is given beside it. Where the history is too short to check, there is no forecast.";

/// The forecasts' technical definition.
pub const FORECAST_DEFINITION: &str = "From each headline's monthly figures (each month as the scorecard counts it; a withheld or missing month ends the history), to the last whole month before the period's end or the as-of day, at most 60 months. With 24 months or more: MSTL (a 12-month season estimated by LOESS from the same months of earlier years) with the ETS model of lowest AICc for the seasonally adjusted series; with fewer, that ETS model alone, no season (augurs). Rates, shares and unit costs: the forecast of the year's last month. Savings: the year's total so far plus the sum of the forecast months, its interval the sum of the months' intervals. Backtest: the same forecast (same method, same number of months ahead) from every earlier month with at least 12 months behind it whose outcome is known; mean absolute error. Where the backtest's root mean square error exceeds the model's standard error, the intervals are widened to it. No forecast with fewer than 12 + months ahead + 2 unbroken months. Made nightly by channelshift-api forecast.";

/// A headline's year-end forecast in a sentence: "On course for 47.0% by
/// March 2027 (95% range 44.0% to 50.0%; 80% range 45.1% to 48.9%); target
/// 45.0%: green. …", or why there is none.
pub fn forecast_sentence(forecast: &channelshift_reports::pack::PackForecast) -> String {
    let unit = forecast.unit;
    let f = match &forecast.forecast {
        Ok(f) => f,
        Err(why) => return format!("No year-end forecast: {why}."),
    };
    let by = f.year_end.format("%B %Y");
    let course = match forecast.kpi {
        Kpi::EfficiencySavings => format!("On course to save {} by {by}", figure(unit, f.value)),
        _ => format!("On course for {} by {by}", figure(unit, f.value)),
    };
    let target = forecast
        .target
        .map(|target| {
            format!(
                "; {}target {}: {}",
                if forecast.kpi == Kpi::EfficiencySavings {
                    "annual "
                } else {
                    ""
                },
                figure(unit, target.target()),
                rag_word(target.rag(unit.published(f.value)))
            )
        })
        .unwrap_or_default();
    // A miss in percentage points, not per cent.
    let miss_unit = if unit == Unit::Percent {
        Unit::Points
    } else {
        unit
    };
    format!(
        "{course} (95% range {} to {}; 80% range {} to {}){target}. Forecast from {} months to {}. Made from each of {} earlier months, the same forecast missed by {} on average.",
        figure(unit, f.low95),
        figure(unit, f.high95),
        figure(unit, f.low80),
        figure(unit, f.high80),
        f.history_months,
        f.history_to.format("%B %Y"),
        f.backtests,
        figure(miss_unit, f.backtest_mae),
    )
}

/// A verdict in words.
pub fn verdict(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Recommended => "Recommended".into(),
        Verdict::NotRecommended { gap_points } => {
            format!("Not recommended: digital satisfaction {gap_points:.0} points below assisted")
        }
        Verdict::NoSaving => "No saving: digital costs as much as assisted".into(),
        Verdict::AtBenchmark => "At or below its benchmark".into(),
        Verdict::NoBenchmark { .. } => "Too few services of similar volume to benchmark".into(),
        Verdict::MissingUnitCost { .. } => "Cannot be priced: a unit cost is missing".into(),
        Verdict::Withheld => "Withheld (too few cases)".into(),
    }
}

/// A readable name for a code: `face_to_face` → "Face to face".
pub fn humanise(code: &str) -> String {
    let text = code.replace('_', " ");
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// The page's headline sentence, e.g. "Digital take-up was 46.2% this
/// quarter, up from 43.1% last quarter; target 50.0%: amber."
pub fn headline(pack: &Pack, kpi: Kpi) -> String {
    let period = &pack.period;
    let this = this_period(period);
    let Some(trend) = pack.trend(kpi) else {
        return format!(
            "{} is not reported: {}",
            title(kpi),
            caveats(pack, kpi).last().cloned().unwrap_or_default()
        );
    };
    let Some(point) = trend.current() else {
        return format!("There is no {} figure {this}.", title(kpi).to_lowercase());
    };
    let Some(value) = point.value else {
        return if point.suppressed {
            format!(
                "The {} figure {this} is withheld: it rests on too few cases to publish.",
                title(kpi).to_lowercase()
            )
        } else {
            format!(
                "There is no {} figure {this}: no data.",
                title(kpi).to_lowercase()
            )
        };
    };
    let shown = figure(trend.unit, value);
    let change = change(trend, period)
        .map(|text| format!(", {text}"))
        .unwrap_or_default();
    let target = |target: Option<channelshift_kpi::rag::Target>, value: f64| {
        target
            .map(|target| {
                format!(
                    "; target {}: {}",
                    figure(trend.unit, target.target()),
                    rag_word(target.rag(trend.unit.published(value)))
                )
            })
            .unwrap_or_default()
    };
    match kpi {
        Kpi::ChannelMix => {
            format!("Online self-service carried {shown} of all contacts {this}{change}.")
        }
        Kpi::Satisfaction => {
            let answers = point
                .n
                .map(|n| format!(" ({} answers)", grouped(n)))
                .unwrap_or_default();
            let target = target(trend.target, value);
            // The council's headline measure (`kpi.satisfaction`), in its own words.
            let measure = match pack.satisfaction {
                channelshift_kpi::catalogue::Headline::Measure { measure, .. } => measure,
                _ => "satisfied",
            };
            match measure {
                "good" => format!(
                    "{shown} of customers who answered the survey rated the service good {this}{answers}{change}{target}."
                ),
                "easy" => format!(
                    "{shown} of customers who answered the survey found it easy {this}{answers}{change}{target}."
                ),
                "net" | "nps" => format!(
                    "The {} was {value:+.1} points {this}{answers}{change}{target}.",
                    if measure == "nps" {
                        "Net Promoter Score (% scoring 9-10 minus % scoring 0-6)"
                    } else {
                        "GovMetric net score (% good minus % poor)"
                    }
                ),
                _ => format!(
                    "{shown} of customers who answered the survey were satisfied {this}{answers}{change}{target}."
                ),
            }
        }
        Kpi::CompletionRate => format!(
            "Customers finished {shown} of the transactions they started online {this}{change}{}.",
            target(trend.target, value)
        ),
        Kpi::EfficiencySavings => {
            let year = pack
                .rows_of(kpi)
                .find(|row| row.breakdown == "financial_year_to_date");
            let to_date = match year.and_then(|row| row.row.value) {
                Some(total) => format!(
                    ", and {} so far this financial year{}",
                    figure(Unit::Gbp, total),
                    year.and_then(|row| row.target)
                        .map(|target| format!(
                            " against {} due by now on {} of the year's target: {}",
                            figure(Unit::Gbp, target.target()),
                            if pack.settings.savings_profiled {
                                "the council's monthly profile"
                            } else {
                                "a straight-line profile"
                            },
                            rag_word(target.rag(Unit::Gbp.published(total)))
                        ))
                        .unwrap_or_default()
                ),
                None => String::new(),
            };
            format!("Channel shift saved an estimated {shown} {this}{to_date}.")
        }
        Kpi::Hotspots => {
            let ward = point
                .row
                .as_ref()
                .and_then(|row| row.key("ward"))
                .unwrap_or("one ward");
            let wards = pack
                .rows_of(kpi)
                .filter(|row| row.breakdown == "ward" && row.row.value.is_some())
                .count();
            let withheld = pack
                .rows_of(kpi)
                .filter(|row| row.breakdown == "ward" && row.row.suppressed)
                .count();
            let withheld = match withheld {
                0 => String::new(),
                1 => "; 1 more ward is withheld, with too few transactions to publish".into(),
                more => format!(
                    "; {more} more wards are withheld, with too few transactions to publish"
                ),
            };
            format!(
                "Digital take-up was lowest in ward {ward}, at {shown} {this} (the lowest of {wards} wards with enough data to publish{withheld})."
            )
        }
        Kpi::TelephoneWait => format!(
            "Half of callers waited less than {shown} {this}{change}{}.",
            target(trend.target, value)
        ),
        Kpi::DigitalTakeUp
        | Kpi::CostPerTransaction
        | Kpi::AvoidableContact
        | Kpi::FirstContactResolution
        | Kpi::FirstContactResolutionFlag
        | Kpi::TelephoneAbandonment
        | Kpi::ResponseRate => format!(
            "{} was {shown} {this}{change}{}.",
            title(kpi),
            target(trend.target, value)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(figure(Unit::Percent, 46.23), "46.2%");
        assert_eq!(figure(Unit::Gbp, 2.834), "£2.83");
        assert_eq!(figure(Unit::Gbp, 465_000.0), "£465,000");
        assert_eq!(figure(Unit::Gbp, -1234.4), "−£1,234");
        assert_eq!(humanise("face_to_face"), "Face to face");
        assert_eq!(figure(Unit::Seconds, 42.4), "42 s");
        assert_eq!(figure(Unit::Seconds, 125.5), "2 min 06 s");
    }

    #[test]
    fn periods_are_named_in_words() {
        let quarter = Period::containing(
            PeriodKind::FinancialQuarter,
            chrono::NaiveDate::from_ymd_opt(2025, 5, 10).expect("a date"),
        )
        .expect("a quarter");
        assert_eq!(period_name(&quarter), "2025-26 Q1 (April to June 2025)");
    }
}
