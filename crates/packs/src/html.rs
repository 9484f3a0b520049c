//! The pack as an accessible HTML report (WCAG 2.2 AA): a summary, then one
//! page per KPI with its headline in words, RAG by text and symbol as well
//! as colour, an SVG trend of the last eight periods with a text alternative
//! and the same figures as a table beside it, the breakdowns, and what the
//! KPI means and what to bear in mind. Printed (and so as PDF), each KPI
//! starts a new A4 page. Everything shown is escaped by `maud`.

use crate::{words, Pack, PackRow, Trend};
use channelshift_kpi::catalogue::{Headline, Kpi, TargetScope, Unit};
use channelshift_kpi::rag::Rag;
use channelshift_kpi::suppression::Published;
use channelshift_kpi::Rate;
use channelshift_reports::forecast::YearEndForecast;
use maud::{html, Markup, PreEscaped, DOCTYPE};

const CSS: &str = r#"
:root { color: #0b0c0c; background: #ffffff; font-family: Arial, Helvetica, sans-serif; line-height: 1.4; }
body { margin: 0 auto; max-width: 60rem; padding: 1rem; }
h1 { font-size: 1.9rem; margin: 0 0 .5rem; }
h2 { font-size: 1.5rem; margin: 2rem 0 .5rem; }
h3 { font-size: 1.15rem; margin: 1.25rem 0 .4rem; }
.headline { font-size: 1.2rem; font-weight: bold; }
.meta { color: #383f43; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
caption { text-align: left; font-weight: bold; padding: .25rem 0; }
th, td { border: 1px solid #505a5f; padding: .25rem .5rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
thead th { background: #f3f2f1; }
.rag { display: inline-block; padding: .1rem .5rem; border-radius: .2rem; font-weight: bold; border: 2px solid #0b0c0c; }
.rag-green { background: #00703c; color: #ffffff; }
.rag-amber { background: #ffdd00; color: #0b0c0c; }
.rag-red { background: #d4351c; color: #ffffff; }
.trend { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.trend figure { margin: 0; flex: 1 1 30rem; }
.trend figcaption { font-size: .95rem; color: #383f43; }
.restated { font-weight: bold; }
.breakdowns { display: flex; flex-wrap: wrap; gap: 0 1.5rem; align-items: flex-start; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dt { font-weight: bold; }
dd { margin: 0; }
a { color: #1d70b8; }
@page { size: A4; margin: 14mm; }
@media print {
  body { max-width: none; padding: 0; }
  section.kpi { break-before: page; }
  table, figure { break-inside: avoid; }
}
"#;

/// Chart geometry, in SVG user units.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 40.0;

fn rag_badge(rag: Rag) -> Markup {
    let (symbol, words) = words::rag(rag);
    let class = format!("rag rag-{}", words::rag_word(rag));
    html! {
        span class=(class) { span aria-hidden="true" { (symbol) " " } (words) }
    }
}

fn shown(unit: Unit, value: Option<f64>, suppressed: bool) -> String {
    words::figure_or_reason(unit, value, suppressed)
}

/// A short axis label for a period: "24-25 Q3" for "2024-25 Q3".
fn short_label(label: &str) -> String {
    label.get(2..).unwrap_or(label).to_string()
}

/// The trend in words: the text alternative of the chart.
fn trend_in_words(trend: &Trend) -> String {
    let points: Vec<String> = trend
        .points
        .iter()
        .map(|point| {
            format!(
                "{}: {}",
                point.period.label(),
                shown(trend.unit, point.value, point.suppressed)
            )
        })
        .collect();
    let target = trend
        .target
        .map(|target| {
            format!(
                " The target is {}.",
                words::figure(trend.unit, target.target())
            )
        })
        .unwrap_or_default();
    format!(
        "Line chart of {} over the last {} periods. {}.{target}",
        trend.measure.to_lowercase(),
        trend.points.len(),
        points.join("; ")
    )
}

/// The y range of the chart: 0–100 for percentages, else from 0 (or the
/// lowest value, if negative) to a little above the highest value or target.
fn y_range(trend: &Trend, projection: Option<&YearEndForecast>) -> (f64, f64) {
    if trend.unit == Unit::Percent {
        return (0.0, 100.0);
    }
    let values = trend
        .points
        .iter()
        .filter_map(|point| point.value)
        .chain(trend.target.map(|target| target.target()))
        .chain(projection.into_iter().flat_map(|f| [f.low95, f.high95]));
    let (low, high) = values.fold((0.0f64, 0.0f64), |(low, high), v| (low.min(v), high.max(v)));
    let high = if high <= low { low + 1.0 } else { high * 1.15 };
    (low * 1.15, high)
}

/// The trend chart; with `projection`, the year-end forecast drawn after
/// the last period: a dashed line to it, its 80% range as a thick bar and
/// its 95% range as a thin one.
fn chart(trend: &Trend, id: &str, projection: Option<&YearEndForecast>) -> Markup {
    let (low, high) = y_range(trend, projection);
    let count = trend.points.len().max(1) + usize::from(projection.is_some());
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |index: usize| LEFT + plot_w * (index as f64 + 0.5) / count as f64;
    let y = |value: f64| TOP + plot_h * (1.0 - (value - low) / (high - low));
    let ticks: Vec<f64> = (0..=4)
        .map(|i| low + (high - low) * i as f64 / 4.0)
        .collect();
    // Runs of consecutive figures: a withheld or missing period breaks the line.
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (index, point) in trend.points.iter().enumerate() {
        match point.value {
            Some(value) => runs
                .last_mut()
                .map_or((), |run| run.push((x(index), y(value)))),
            None => runs.push(Vec::new()),
        }
    }
    let title_id = format!("{id}-chart-title");
    let desc_id = format!("{id}-chart-desc");
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
            width="100%" role="img" aria-labelledby=(format!("{title_id} {desc_id}")) {
            title id=(title_id) { (trend.measure) ", last " (count) " periods" }
            desc id=(desc_id) { (trend_in_words(trend)) }
            @for tick in &ticks {
                line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(format!("{:.1}", y(*tick))) y2=(format!("{:.1}", y(*tick)))
                    stroke="#b1b4b6" stroke-width="1" {}
                text x=(LEFT - 8.0) y=(format!("{:.1}", y(*tick) + 4.0)) text-anchor="end"
                    font-size="12" fill="#0b0c0c" { (words::figure(trend.unit, *tick)) }
            }
            line x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(HEIGHT - BOTTOM) stroke="#0b0c0c" stroke-width="1" {}
            @if let Some(target) = trend.target {
                @let ty = format!("{:.1}", y(target.target()));
                line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(ty) y2=(ty) stroke="#0b0c0c"
                    stroke-width="2" stroke-dasharray="8 5" {}
                text x=(LEFT + 6.0) y=(format!("{:.1}", y(target.target()) - 6.0)) text-anchor="start"
                    font-size="12" fill="#0b0c0c" { "Target " (words::figure(trend.unit, target.target())) }
            }
            @for run in runs.iter().filter(|run| !run.is_empty()) {
                polyline fill="none" stroke="#1d70b8" stroke-width="3"
                    points=(run.iter().map(|(px, py)| format!("{px:.1},{py:.1}")).collect::<Vec<_>>().join(" ")) {}
            }
            @for (index, point) in trend.points.iter().enumerate() {
                @if let Some(value) = point.value {
                    circle cx=(format!("{:.1}", x(index))) cy=(format!("{:.1}", y(value))) r="5"
                        fill=(if point.restated_from.is_some() { "#ffffff" } else { "#1d70b8" })
                        stroke="#1d70b8" stroke-width="2" {}
                }
                text x=(format!("{:.1}", x(index))) y=(HEIGHT - BOTTOM + 18.0) text-anchor="middle"
                    font-size="12" fill="#0b0c0c" { (short_label(&point.period.label())) }
            }
            @if let Some(f) = projection {
                @let fx = x(trend.points.len());
                @if let Some((lx, ly)) = runs.last().and_then(|run| run.last()) {
                    line x1=(format!("{lx:.1}")) y1=(format!("{ly:.1}")) x2=(format!("{fx:.1}"))
                        y2=(format!("{:.1}", y(f.value))) stroke="#1d70b8" stroke-width="2"
                        stroke-dasharray="4 4" {}
                }
                line x1=(format!("{fx:.1}")) x2=(format!("{fx:.1}")) y1=(format!("{:.1}", y(f.low95)))
                    y2=(format!("{:.1}", y(f.high95))) stroke="#505a5f" stroke-width="2" {}
                line x1=(format!("{fx:.1}")) x2=(format!("{fx:.1}")) y1=(format!("{:.1}", y(f.low80)))
                    y2=(format!("{:.1}", y(f.high80))) stroke="#505a5f" stroke-width="8" {}
                circle cx=(format!("{fx:.1}")) cy=(format!("{:.1}", y(f.value))) r="5"
                    fill="#ffffff" stroke="#1d70b8" stroke-width="2" {}
                text x=(format!("{fx:.1}")) y=(format!("{:.1}", y(f.high95) - 8.0)) text-anchor="middle"
                    font-size="12" fill="#0b0c0c" { "Forecast" }
                text x=(format!("{fx:.1}")) y=(HEIGHT - BOTTOM + 18.0) text-anchor="middle"
                    font-size="12" fill="#0b0c0c" { (f.year_end.format("%b %y")) }
            }
        }
    }
}

fn trend_table(trend: &Trend, id: &str) -> Markup {
    html! {
        table aria-describedby=(format!("{id}-chart-desc")) {
            caption { "Figures for the chart" }
            thead { tr {
                th scope="col" { "Period" }
                th scope="col" { "Figure" }
                th scope="col" { "Cases" }
                @if trend.target.is_some() { th scope="col" { "Status" } }
            } }
            tbody {
                @for point in &trend.points {
                    tr {
                        th scope="row" { (point.period.label()) }
                        td.num {
                            (shown(trend.unit, point.value, point.suppressed))
                            @if let Some(before) = point.restated_from {
                                br;
                                span.restated { "Restated: previously "
                                    (shown(trend.unit, before.value, before.suppressed)) }
                            }
                        }
                        td.num { (point.n.map(words::grouped).unwrap_or_default()) }
                        @if let Some(target) = trend.target {
                            td { @if let Some(value) = point.value { (rag_badge(target.rag(value))) } }
                        }
                    }
                }
            }
        }
    }
}

/// The breakdown tables of a KPI (for satisfaction, the csat5 measure; for
/// hot spots, the ten lowest wards; for the channel mix, by channel and
/// class only). The workbooks and the CSV hold every breakdown.
fn breakdowns(pack: &Pack, kpi: Kpi) -> Markup {
    let spec = kpi.spec();
    let rows: Vec<&PackRow> = pack
        .rows_of(kpi)
        .filter(|row| row.breakdown != "total" && row.breakdown != "financial_year_to_date")
        .filter(|row| {
            match if kpi == Kpi::Satisfaction {
                pack.satisfaction
            } else {
                spec.trend.headline
            } {
                Headline::Measure {
                    instrument,
                    measure,
                } => row.measure() == format!("{instrument}/{measure}"),
                _ => true,
            }
        })
        .filter(|row| kpi != Kpi::ChannelMix || row.breakdown.starts_with("channel"))
        .collect();
    let mut keys: Vec<&str> = rows.iter().map(|row| row.breakdown).collect();
    keys.dedup();
    html! {
        div.breakdowns { @for key in keys {
            @let of_key: Vec<&&PackRow> = rows.iter().filter(|row| row.breakdown == key)
                .take(if kpi == Kpi::Hotspots { 10 } else { usize::MAX }).collect();
            table {
                caption {
                    @if key == "ward" { "The ten wards with the lowest take-up" }
                    @else if key == "lsoa" { "The ten neighbourhoods (LSOAs) with the lowest take-up" }
                    @else { "By " (words::humanise(key).to_lowercase()) }
                }
                thead { tr {
                    th scope="col" { (words::humanise(key)) }
                    th scope="col" { "Figure" }
                    th scope="col" { "Cases" }
                    @if spec.shows_interval {
                        th scope="col" { "95% interval" }
                    }
                } }
                tbody {
                    @for row in of_key {
                        tr {
                            th scope="row" {
                                @if key == "ward" || key == "lsoa" { (row.breakdown_value()) }
                                @else { (words::humanise(row.breakdown_value())) }
                            }
                            td.num { (shown(row.unit, row.row.value, row.row.suppressed)) }
                            td.num { (row.row.n.map(words::grouped).unwrap_or_default()) }
                            @if spec.shows_interval {
                                td.num {
                                    @if let (Some(low), Some(high)) = (row.row.ci95_low, row.row.ci95_high) {
                                        (words::figure(row.unit, low)) " to " (words::figure(row.unit, high))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        } }
    }
}

fn kpi_page(pack: &Pack, kpi: Kpi) -> Markup {
    let title = words::title(kpi);
    let id = format!("kpi-{kpi}");
    let trend = pack.trend(kpi);
    let forecast = pack.forecasts.iter().find(|forecast| forecast.kpi == kpi);
    // Drawn on the trend where it is the same measure: a month's level
    // (savings are a year's total, the trend each period's own).
    let projection = forecast
        .filter(|_| kpi != Kpi::EfficiencySavings)
        .filter(|forecast| trend.is_some_and(|trend| trend.unit == forecast.unit))
        .and_then(|forecast| forecast.forecast.as_ref().ok());
    let status = trend.and_then(|trend| {
        let value = trend.current()?.value?;
        Some(trend.target?.rag(trend.unit.published(value)))
    });
    // Savings are held to the year-to-date target.
    let status = if kpi.spec().targets == TargetScope::FinancialYearToDate {
        pack.rows_of(kpi)
            .find(|row| row.breakdown == "financial_year_to_date")
            .and_then(|row| row.rag)
    } else {
        status
    };
    html! {
        section.kpi aria-labelledby=(id) {
            h2 id=(id) { (title) }
            p.headline { (words::headline(pack, kpi)) }
            @if let Some(forecast) = forecast {
                h3 { (words::FORECAST_TITLE) }
                p.forecast { (words::forecast_sentence(forecast)) }
            }
            @if let Some(rag) = status {
                p { "Status: " (rag_badge(rag)) }
            }
            @if let Some(trend) = trend {
                h3 { "Trend" }
                div.trend {
                    figure {
                        (chart(trend, &id, projection))
                        figcaption {
                            (trend_in_words(trend))
                            @if let Some(f) = projection {
                                " The year-end forecast, drawn after the last period, is "
                                (words::figure(trend.unit, f.value)) " for " (f.year_end.format("%B %Y"))
                                " (95% range " (words::figure(trend.unit, f.low95)) " to "
                                (words::figure(trend.unit, f.high95)) ")."
                            }
                        }
                    }
                    (trend_table(trend, &id))
                }
            }
            (breakdowns(pack, kpi))
            h3 { "What this measures" }
            p { (words::definition(kpi)) }
            h3 { "Bear in mind" }
            ul {
                @for caveat in words::caveats(pack, kpi) { li { (caveat) } }
                li { "Every breakdown, with its counts and intervals, is in the spreadsheet and CSV versions of this pack." }
            }
        }
    }
}

fn summary(pack: &Pack) -> Markup {
    html! {
        section aria-labelledby="summary" {
            h2 id="summary" { "Summary" }
            table {
                caption { "Each measure " (words::this_period(&pack.period)) ", against the period before and the target" }
                thead { tr {
                    th scope="col" { "Measure" }
                    th scope="col" { "This period" }
                    th scope="col" { "Previous period" }
                    th scope="col" { "Target" }
                    th scope="col" { "Status" }
                } }
                tbody {
                    @for &kpi in Kpi::ALL {
                        @if let Some(trend) = pack.trend(kpi) {
                            @let current = trend.current();
                            @let previous = trend.previous();
                            tr {
                                th scope="row" { a href=(format!("#kpi-{kpi}")) { (words::title(kpi)) } }
                                td.num { (current.map(|p| shown(trend.unit, p.value, p.suppressed)).unwrap_or_default()) }
                                td.num { (previous.map(|p| shown(trend.unit, p.value, p.suppressed)).unwrap_or_default()) }
                                td.num { (trend.target.map(|t| words::figure(trend.unit, t.target())).unwrap_or_default()) }
                                td {
                                    @if let (Some(target), Some(value)) = (trend.target, current.and_then(|p| p.value)) {
                                        (rag_badge(target.rag(value)))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @let restated: Vec<_> = pack.restatements().collect();
            @if !restated.is_empty() {
                h3 { "Restated figures" }
                p { "Late data has changed these figures since the previous pack"
                    @if let Some(at) = pack.previous_as_of { " (data as of " (at.to_string()) ")" } ":" }
                ul {
                    @for (trend, point) in restated {
                        li { (words::title(trend.kpi)) ", " (point.period.label()) ": now "
                            (shown(trend.unit, point.value, point.suppressed)) ", previously "
                            (point.restated_from.map(|b| shown(trend.unit, b.value, b.suppressed)).unwrap_or_default()) "." }
                    }
                }
            }
        }
    }
}

/// Where to shift next: the ranked services in words and as a table, with
/// every assumption.
fn opportunities(pack: &Pack) -> Markup {
    let report = &pack.opportunities;
    let satisfied = |rate: &Published<Rate>| match rate {
        Published::Shown(rate) => rate
            .percent()
            .map(|percent| words::figure(Unit::Percent, percent))
            .unwrap_or_else(|| "no responses".into()),
        Published::Suppressed => "withheld (too few cases)".into(),
    };
    let share = |share: Option<f64>| {
        share
            .map(|share| words::figure(Unit::Percent, share * 100.0))
            .unwrap_or_default()
    };
    html! {
        section.kpi aria-labelledby="opportunities" {
            h2 id="opportunities" { (words::OPPORTUNITY_TITLE) }
            p {
                "Over the year from " (words::long_date(report.from)) " to " (words::long_date(report.to))
                ", the recommended moves would save about "
                (channelshift_kpi::opportunity::about(report.recommended_saving)) " a year."
            }
            @if !report.sentences.is_empty() {
                ol {
                    @for sentence in report.sentences.iter().take(5) { li { (sentence) } }
                }
            }
            table {
                caption { "Every service, ranked by what moving its assisted contacts online would save" }
                thead { tr {
                    th scope="col" { "Service" }
                    th scope="col" { "Verdict" }
                    th scope="col" { "Contacts a year" }
                    th scope="col" { "Assisted share" }
                    th scope="col" { "Benchmark" }
                    th scope="col" { "Saving a year" }
                    th scope="col" { "Digital satisfied" }
                    th scope="col" { "Assisted satisfied" }
                } }
                tbody {
                    @for service in &report.services {
                        tr {
                            th scope="row" { (words::humanise(&service.service)) }
                            td { (words::verdict(&service.verdict)) }
                            td.num { (service.contacts.map(words::grouped).unwrap_or_else(|| "withheld".into())) }
                            td.num { (share(service.assisted_share)) }
                            td.num { (share(service.benchmark.as_ref().map(|b| b.assisted_share()))) }
                            td.num { (service.annual_saving.map(|saving| words::figure(Unit::Gbp, saving.0 as f64 / 100.0)).unwrap_or_default()) }
                            td.num { (satisfied(&service.digital_satisfied)) }
                            td.num { (satisfied(&service.assisted_satisfied)) }
                        }
                    }
                }
            }
            h3 { "What this measures" }
            p { (words::OPPORTUNITY_MEANING) }
            h3 { "Assumptions" }
            ul {
                @for assumption in &report.assumptions { li { (assumption) } }
            }
        }
    }
}

fn about(pack: &Pack) -> Markup {
    html! {
        section.kpi aria-labelledby="about" {
            h2 id="about" { "About these figures" }
            h3 { "About the year-end forecasts" }
            p { (words::FORECAST_MEANING) }
            dl {
                @for (item, value) in super::workbook::metadata(pack) {
                    dt { (item) }
                    dd { (match value {
                        super::workbook::Cell::Text(text) => text,
                        super::workbook::Cell::Number(number) => number.to_string(),
                        super::workbook::Cell::Bool(flag) => if flag { "yes".into() } else { "no".into() },
                        super::workbook::Cell::Empty => String::new(),
                    }) }
                }
            }
        }
    }
}

/// The report as one HTML document.
pub fn report(pack: &Pack) -> String {
    let title = words::pack_title(pack);
    let coverage = &pack.coverage;
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { (title) }
                    p.meta {
                        "Period: " (words::period_name(&pack.period)) ". Data as of "
                        (pack.as_of_text()) " (UTC). "
                        "The data covers " (coverage.days_with_data) " of the " (coverage.days)
                        " days of the period so far."
                    }
                }
                main {
                    (summary(pack))
                    @for &kpi in Kpi::ALL {
                        @if pack.trend(kpi).is_some() || pack.rows_of(kpi).next().is_some() {
                            (kpi_page(pack, kpi))
                        }
                    }
                    (opportunities(pack))
                    (about(pack))
                }
            }
        }
    }
    .into_string()
}
