//! The pack as a workbook, in XLSX (rust_xlsxwriter) and ODS
//! (spreadsheet-ods): a summary sheet, one sheet per KPI, the trends, plain-
//! English definitions and the metadata the figures rest on. Each sheet is
//! one table with its header in row 1, so it reads well in a screen reader
//! and loads straight into analysis tools. Text is never a formula.

use crate::csv::neutralise;
use crate::{words, Pack, PackRow};
use channelshift_kpi::catalogue::Kpi;
use channelshift_kpi::rag::Rag;
use channelshift_kpi::suppression::Published;
use channelshift_kpi::Rate;

/// A cell of the neutral sheet model both writers share.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
    Bool(bool),
    Empty,
}

fn text(value: impl Into<String>) -> Cell {
    Cell::Text(value.into())
}

fn number(value: Option<f64>) -> Cell {
    value.map_or(Cell::Empty, Cell::Number)
}

/// A figure, or "withheld" where small numbers are suppressed: the cell says so.
fn figure(value: Option<f64>, suppressed: bool) -> Cell {
    match value {
        Some(value) => Cell::Number(value),
        None if suppressed => text(WITHHELD),
        None => Cell::Empty,
    }
}

/// What a suppressed figure's cell says.
pub const WITHHELD: &str = "withheld";

fn count<T: Into<u64>>(value: Option<T>) -> Cell {
    value.map_or(Cell::Empty, |value| Cell::Number(value.into() as f64))
}

fn rag(value: Option<Rag>) -> Cell {
    value.map_or(Cell::Empty, |rag| text(words::rag(rag).1))
}

/// One sheet: a name, its column headers and widths, and its rows.
pub struct Sheet {
    pub name: String,
    pub columns: Vec<(&'static str, f64)>,
    pub rows: Vec<Vec<Cell>>,
}

fn summary(pack: &Pack) -> Sheet {
    let mut rows = Vec::new();
    for &kpi in Kpi::ALL {
        let Some(trend) = pack.trend(kpi) else {
            continue;
        };
        let current = trend.current();
        let target = trend.target;
        rows.push(vec![
            text(words::title(kpi)),
            text(trend.measure),
            current.map_or(Cell::Empty, |point| figure(point.value, point.suppressed)),
            trend
                .previous()
                .map_or(Cell::Empty, |point| figure(point.value, point.suppressed)),
            trend
                .direction()
                .map_or(Cell::Empty, |d| text(words::direction(d))),
            number(target.map(|target| target.target())),
            rag(target
                .zip(current.and_then(|point| point.value))
                .map(|(t, v)| t.rag(v))),
            current.map_or(Cell::Empty, |point| count(point.n)),
            Cell::Bool(current.is_some_and(|point| point.suppressed)),
            text(words::headline(pack, kpi)),
        ]);
    }
    Sheet {
        name: "Summary".into(),
        columns: vec![
            ("KPI", 28.0),
            ("What is measured", 48.0),
            ("This period", 14.0),
            ("Previous period", 16.0),
            ("Change", 12.0),
            ("Target", 10.0),
            ("RAG", 24.0),
            ("Cases (n)", 11.0),
            ("Withheld", 10.0),
            ("In words", 90.0),
        ],
        rows,
    }
}

fn kpi_row(row: &PackRow) -> Vec<Cell> {
    let value = row.breakdown_value();
    vec![
        text(words::humanise(row.breakdown)),
        text(value),
        text(row.measure()),
        text(row.row.period_start.to_string()),
        text(row.row.period_end.to_string()),
        text(row.unit.as_str()),
        figure(row.row.value, row.row.suppressed),
        count(row.row.n),
        row.row
            .numerator
            .map_or(Cell::Empty, |n| Cell::Number(n as f64)),
        count(row.row.denominator),
        number(row.row.ci95_low),
        number(row.row.ci95_high),
        number(row.target.map(|target| target.target())),
        rag(row.rag),
        Cell::Bool(row.row.suppressed),
    ]
}

fn kpi_sheet(pack: &Pack, kpi: Kpi) -> Sheet {
    Sheet {
        name: kpi.as_str().into(),
        columns: vec![
            ("Breakdown", 24.0),
            ("Value of breakdown", 24.0),
            ("Measure", 22.0),
            ("Period start", 13.0),
            ("Period end", 13.0),
            ("Unit", 9.0),
            ("Figure", 12.0),
            ("Cases (n)", 11.0),
            ("Numerator", 12.0),
            ("Denominator", 13.0),
            ("95% interval low", 16.0),
            ("95% interval high", 16.0),
            ("Target", 10.0),
            ("RAG", 24.0),
            ("Withheld", 10.0),
        ],
        rows: pack.rows_of(kpi).map(kpi_row).collect(),
    }
}

fn trends(pack: &Pack) -> Sheet {
    let mut rows = Vec::new();
    for trend in &pack.trends {
        for point in &trend.points {
            rows.push(vec![
                text(trend.kpi.as_str()),
                text(trend.measure),
                text(point.period.label()),
                text(point.period.first_day().to_string()),
                text(point.period.last_day().to_string()),
                figure(point.value, point.suppressed),
                count(point.n),
                Cell::Bool(point.suppressed),
                Cell::Bool(point.restated_from.is_some()),
                point
                    .restated_from
                    .map_or(Cell::Empty, |before| number(before.value)),
            ]);
        }
    }
    Sheet {
        name: "Trends".into(),
        columns: vec![
            ("KPI", 24.0),
            ("What is measured", 48.0),
            ("Period", 12.0),
            ("Period start", 13.0),
            ("Period end", 13.0),
            ("Figure", 12.0),
            ("Cases (n)", 11.0),
            ("Withheld", 10.0),
            ("Restated", 10.0),
            ("Previously published", 20.0),
        ],
        rows,
    }
}

/// Where to shift next: every service's opportunity, ranked.
fn opportunities(pack: &Pack) -> Sheet {
    let report = &pack.opportunities;
    let satisfied = |rate: &Published<Rate>| match rate {
        Published::Shown(rate) => number(rate.percent()),
        Published::Suppressed => text(WITHHELD),
    };
    let rows = report
        .services
        .iter()
        .zip(&report.sentences)
        .enumerate()
        .map(|(rank, (service, sentence))| {
            vec![
                Cell::Number((rank + 1) as f64),
                text(words::humanise(&service.service)),
                text(words::verdict(&service.verdict)),
                count(service.contacts),
                count(service.assisted_contacts),
                number(service.assisted_share.map(|share| share * 100.0)),
                number(
                    service
                        .benchmark
                        .as_ref()
                        .map(|benchmark| benchmark.assisted_share() * 100.0),
                ),
                count(service.moved_contacts),
                number(service.annual_saving.map(|saving| saving.0 as f64 / 100.0)),
                satisfied(&service.digital_satisfied),
                satisfied(&service.assisted_satisfied),
                text(sentence.as_str()),
            ]
        })
        .collect();
    Sheet {
        name: "Where to shift next".into(),
        columns: vec![
            ("Rank", 7.0),
            ("Service", 24.0),
            ("Verdict", 28.0),
            ("Contacts a year", 15.0),
            ("Assisted contacts", 16.0),
            ("Assisted share (%)", 17.0),
            ("Benchmark share (%)", 19.0),
            ("Contacts moved", 15.0),
            ("Saving a year (£)", 16.0),
            ("Digital satisfied (%)", 19.0),
            ("Assisted satisfied (%)", 20.0),
            ("In words", 100.0),
        ],
        rows,
    }
}

/// Each headline's year-end forecast, or why it has none.
fn forecasts(pack: &Pack) -> Sheet {
    let rows = pack
        .forecasts
        .iter()
        .map(|forecast| {
            let f = forecast.forecast.as_ref().ok();
            let value = |pick: fn(&channelshift_reports::forecast::YearEndForecast) -> f64| {
                number(f.map(pick))
            };
            vec![
                text(forecast.kpi.as_str()),
                text(words::title(forecast.kpi)),
                f.map_or(Cell::Empty, |f| text(f.year_end.to_string())),
                value(|f| f.value),
                value(|f| f.low80),
                value(|f| f.high80),
                value(|f| f.low95),
                value(|f| f.high95),
                number(forecast.target.map(|target| target.target())),
                value(|f| f.backtest_mae),
                count(f.map(|f| f.backtests)),
                count(f.map(|f| f.history_months)),
                f.map_or(Cell::Empty, |f| {
                    text(f.history_to.format("%Y-%m").to_string())
                }),
                f.map_or(Cell::Empty, |f| text(f.method.as_str())),
                f.map_or(Cell::Empty, |f| text(f.made_at.as_str())),
                text(words::forecast_sentence(forecast)),
            ]
        })
        .collect();
    Sheet {
        name: words::FORECAST_TITLE.into(),
        columns: vec![
            ("KPI", 24.0),
            ("Title", 28.0),
            ("Year end", 12.0),
            ("Forecast", 12.0),
            ("80% low", 10.0),
            ("80% high", 10.0),
            ("95% low", 10.0),
            ("95% high", 10.0),
            ("Target", 10.0),
            ("Backtest mean absolute error", 14.0),
            ("Backtests", 10.0),
            ("Months of history", 10.0),
            ("History to", 11.0),
            ("Method", 60.0),
            ("Made at (UTC)", 22.0),
            ("In words", 100.0),
        ],
        rows,
    }
}

fn definitions(pack: &Pack) -> Sheet {
    let mut rows: Vec<Vec<Cell>> = Kpi::ALL
        .iter()
        .map(|&kpi| {
            vec![
                text(kpi.as_str()),
                text(words::title(kpi)),
                text(words::definition(kpi)),
                text(words::caveats(pack, kpi).join(" ")),
                text(kpi.spec().definition),
            ]
        })
        .collect();
    rows.push(vec![
        text("opportunities"),
        text(words::OPPORTUNITY_TITLE),
        text(words::OPPORTUNITY_MEANING),
        text(pack.opportunities.assumptions.join(" ")),
        text(words::OPPORTUNITY_DEFINITION),
    ]);
    rows.push(vec![
        text("forecast"),
        text(words::FORECAST_TITLE),
        text(words::FORECAST_MEANING),
        text("A forecast assumes the months ahead follow the history's trend and season: a change of service, policy or channel since is not in it. Savings need a baseline; a council without one has no savings forecast."),
        text(words::FORECAST_DEFINITION),
    ]);
    Sheet {
        name: "Definitions".into(),
        columns: vec![
            ("KPI", 24.0),
            ("Title", 28.0),
            ("What it means", 90.0),
            ("Bear in mind", 90.0),
            ("Technical definition", 90.0),
        ],
        rows,
    }
}

/// Council, period, as-of, coverage and the settings the figures rest on.
pub fn metadata(pack: &Pack) -> Vec<(String, Cell)> {
    let mut items = vec![
        ("Council".to_string(), text(&pack.council_name)),
        ("Title".into(), text(words::pack_title(pack))),
        ("Period".into(), text(words::period_name(&pack.period))),
        (
            "Period start".into(),
            text(pack.period.first_day().to_string()),
        ),
        (
            "Period end".into(),
            text(pack.period.last_day().to_string()),
        ),
        ("Data as of (UTC)".into(), text(pack.as_of_text())),
        (
            "Compared with the pack as of (UTC)".into(),
            pack.previous_as_of
                .map_or(text("no earlier pack"), |at| text(at.to_string())),
        ),
        (
            "Days of the period covered".into(),
            Cell::Number(pack.coverage.days as f64),
        ),
        (
            "Days with data".into(),
            Cell::Number(pack.coverage.days_with_data as f64),
        ),
        (
            "Take-up definition".into(),
            text(pack.settings.take_up_definition),
        ),
        (
            "Small numbers withheld below".into(),
            Cell::Number(pack.settings.suppression_threshold as f64),
        ),
        (
            "Disclosure control".into(),
            text(channelshift_reports::pack::DISCLOSURE_CONTROL),
        ),
        (
            "Savings baseline".into(),
            pack.settings
                .baseline
                .map_or(text("not configured"), |(from, to)| {
                    text(format!("{from} to {to}"))
                }),
        ),
        (
            "Savings target falls due".into(),
            text(if pack.settings.savings_profiled {
                "by the council's monthly profile (kpi.savings_profile)"
            } else {
                "pro rata by day through the financial year"
            }),
        ),
        (
            "First-contact resolution: repeat window (days)".into(),
            Cell::Number(f64::from(pack.settings.repeat_window_days)),
        ),
    ];
    for (channel, pence) in &pack.unit_costs {
        items.push((
            format!(
                "Unit cost, {} (£ per contact)",
                words::humanise(channel.as_str())
            ),
            pence.map_or(text("none set"), |pence| Cell::Number(pence as f64 / 100.0)),
        ));
    }
    items.push((
        "Produced by".into(),
        text(format!("Channelshift {}", env!("CARGO_PKG_VERSION"))),
    ));
    items
}

fn metadata_sheet(pack: &Pack) -> Sheet {
    Sheet {
        name: "Metadata".into(),
        columns: vec![("Item", 40.0), ("Value", 60.0)],
        rows: metadata(pack)
            .into_iter()
            .map(|(item, value)| vec![text(item), value])
            .collect(),
    }
}

/// The workbook's sheets, in order.
pub fn sheets(pack: &Pack) -> Vec<Sheet> {
    let mut sheets = vec![summary(pack)];
    for &kpi in Kpi::ALL {
        if pack.rows_of(kpi).next().is_some() {
            sheets.push(kpi_sheet(pack, kpi));
        }
    }
    sheets.push(trends(pack));
    sheets.push(opportunities(pack));
    sheets.push(forecasts(pack));
    sheets.push(definitions(pack));
    sheets.push(metadata_sheet(pack));
    sheets
}

/// The pack as an XLSX workbook.
pub fn xlsx(pack: &Pack) -> Result<Vec<u8>, String> {
    use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};
    let fail = |error: rust_xlsxwriter::XlsxError| format!("writing the XLSX pack: {error}");
    let mut workbook = Workbook::new();
    let created = ExcelDateTime::from_timestamp(pack.as_of.0).map_err(fail)?;
    workbook.set_properties(
        &DocProperties::new()
            .set_title(words::pack_title(pack))
            .set_author("Channelshift")
            .set_creation_datetime(&created),
    );
    let header = Format::new().set_bold().set_text_wrap();
    for sheet in sheets(pack) {
        let worksheet = workbook.add_worksheet();
        worksheet.set_name(&sheet.name).map_err(fail)?;
        for (col, (title, width)) in sheet.columns.iter().enumerate() {
            let col = col as u16;
            worksheet
                .write_string_with_format(0, col, *title, &header)
                .map_err(fail)?;
            worksheet.set_column_width(col, *width).map_err(fail)?;
        }
        worksheet.set_freeze_panes(1, 0).map_err(fail)?;
        for (index, row) in sheet.rows.iter().enumerate() {
            let r = index as u32 + 1;
            for (col, cell) in row.iter().enumerate() {
                let col = col as u16;
                match cell {
                    Cell::Text(value) => {
                        worksheet
                            .write_string(r, col, neutralise(value))
                            .map_err(fail)?;
                    }
                    Cell::Number(value) => {
                        worksheet.write_number(r, col, *value).map_err(fail)?;
                    }
                    Cell::Bool(value) => {
                        worksheet.write_boolean(r, col, *value).map_err(fail)?;
                    }
                    Cell::Empty => {}
                }
            }
        }
    }
    workbook.save_to_buffer().map_err(fail)
}

/// The pack as an ODS workbook.
pub fn ods(pack: &Pack) -> Result<Vec<u8>, String> {
    use spreadsheet_ods::{Sheet as OdsSheet, WorkBook};
    let mut workbook = WorkBook::new_empty();
    for sheet in sheets(pack) {
        let mut ods = OdsSheet::new(&sheet.name);
        for (col, (title, width)) in sheet.columns.iter().enumerate() {
            let col = col as u32;
            ods.set_value(0, col, *title);
            ods.set_col_width(col, spreadsheet_ods::Length::Cm(width / 4.5));
        }
        for (index, row) in sheet.rows.iter().enumerate() {
            let r = index as u32 + 1;
            for (col, cell) in row.iter().enumerate() {
                let col = col as u32;
                match cell {
                    Cell::Text(value) => ods.set_value(r, col, neutralise(value).into_owned()),
                    Cell::Number(value) => ods.set_value(r, col, *value),
                    Cell::Bool(value) => ods.set_value(r, col, *value),
                    Cell::Empty => {}
                }
            }
        }
        workbook.push_sheet(ods);
    }
    spreadsheet_ods::write_ods_buf(&mut workbook, Vec::new())
        .map_err(|error| format!("writing the ODS pack: {error}"))
}
