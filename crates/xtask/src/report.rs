//! What the demo prints at the end: the scorecard of the latest complete
//! financial quarter and satisfaction by channel and by customer type, read
//! from the KPI API the way a dashboard or a committee pack would.

use anyhow::{bail, Context, Result};
use channelshift_kpi::catalogue::{Kpi, TargetScope};
use chrono::{Datelike, Months, NaiveDate};
use serde_json::Value;

/// The last day of the latest financial quarter that has ended by `today`
/// (financial quarters are calendar quarters: April–June is Q1).
pub fn latest_complete_quarter_end(today: NaiveDate) -> NaiveDate {
    let first_month = (today.month0() / 3) * 3 + 1;
    let quarter_start = NaiveDate::from_ymd_opt(today.year(), first_month, 1)
        .expect("a quarter starts on a real day");
    quarter_start
        .pred_opt()
        .expect("a quarter start has a day before it")
}

fn quarter_start(end: NaiveDate) -> NaiveDate {
    let first = end.with_day(1).expect("day 1 exists");
    first - Months::new(2)
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> Result<Value> {
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("GET {url}: not JSON"))?;
    if !status.is_success() {
        bail!("GET {url}: {status} {body}");
    }
    Ok(body)
}

fn figure(value: &Value, unit: &str) -> String {
    match (value.as_f64(), unit) {
        (None, _) => "—".into(),
        (Some(value), "gbp") if value.abs() < 1_000.0 => format!("£{value:.2}"),
        (Some(value), "gbp") => format!("£{}", thousands(value)),
        (Some(value), _) => format!("{value:.1}%"),
    }
}

/// `1234567.8` as `1,234,568` (pounds are shown whole in the summary).
fn thousands(value: f64) -> String {
    let rounded = value.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    if rounded < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("—")
}

/// Prints the scorecard and satisfaction breakdowns of the latest complete quarter.
pub fn print(api: &str, token: &str, council: &str, today: NaiveDate) -> Result<()> {
    let end = latest_complete_quarter_end(today);
    let start = quarter_start(end);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let card = get(
            &client,
            &format!("{api}/api/v1/scorecard?council={council}&period=quarter&date={end}"),
            token,
        )
        .await?;
        println!(
            "\nScorecard, {} ({} to {}), {}; data as of {}, coverage {}",
            text(&card["period"]["label"]),
            text(&card["period"]["start"]),
            text(&card["period"]["end"]),
            card["council_name"].as_str().unwrap_or(council),
            text(&card["as_of"]),
            card["coverage"]["percent"]
                .as_f64()
                .map_or("—".into(), |percent| format!("{percent:.0}% of days")),
        );
        println!(
            "  {:<34} {:>10} {:>10} {:>6} {:>12} {:>12}",
            "KPI", "value", "target", "RAG", "vs previous", "vs last year"
        );
        for kpi in card["kpis"].as_array().into_iter().flatten() {
            let unit = text(&kpi["unit"]);
            let name = match kpi["measure"].as_str() {
                Some(measure) => format!("{} ({measure})", text(&kpi["kpi"])),
                None => text(&kpi["kpi"]).to_string(),
            };
            let to_date = text(&kpi["kpi"])
                .parse::<Kpi>()
                .is_ok_and(|kpi| kpi.spec().targets == TargetScope::FinancialYearToDate);
            let name = if to_date {
                format!("{name}, year to date")
            } else {
                name
            };
            println!(
                "  {:<34} {:>10} {:>10} {:>6} {:>12} {:>12}",
                name,
                figure(&kpi["value"], unit),
                figure(&kpi["target"], unit),
                kpi["rag"].as_str().unwrap_or("—").to_uppercase(),
                text(&kpi["vs_previous"]),
                text(&kpi["vs_last_year"]),
            );
        }
        for (key, title) in [("channel", "channel"), ("customer_type", "customer type")] {
            let body = get(
                &client,
                &format!(
                    "{api}/api/v1/kpi/satisfaction?council={council}&from={start}&to={end}&instrument=csat5&group_by={key}"
                ),
                token,
            )
            .await?;
            println!("\nSatisfaction (csat5, % satisfied) by {title}, {start} to {end}:");
            for row in body["rows"].as_array().into_iter().flatten() {
                match row["value"].as_f64() {
                    Some(value) => println!(
                        "  {:<16} {value:>5.1}%  n {:>6}  95% {:.1}–{:.1}%",
                        text(&row[key]),
                        row["n"].as_u64().unwrap_or(0),
                        row["ci95_low"].as_f64().unwrap_or(f64::NAN),
                        row["ci95_high"].as_f64().unwrap_or(f64::NAN)
                    ),
                    None => println!("  {:<16} suppressed (fewer than the threshold)", text(&row[key])),
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    #[test]
    fn the_latest_complete_quarter_ends_before_the_current_one_starts() {
        assert_eq!(
            latest_complete_quarter_end(day(2026, 11, 22)),
            day(2026, 9, 30)
        );
        assert_eq!(
            latest_complete_quarter_end(day(2026, 10, 1)),
            day(2026, 9, 30)
        );
        assert_eq!(
            latest_complete_quarter_end(day(2026, 4, 15)),
            day(2026, 3, 31)
        );
        assert_eq!(
            latest_complete_quarter_end(day(2027, 1, 1)),
            day(2026, 12, 31)
        );
        assert_eq!(quarter_start(day(2026, 9, 30)), day(2026, 7, 1));
        assert_eq!(quarter_start(day(2026, 3, 31)), day(2026, 1, 1));
    }

    #[test]
    fn pounds_are_grouped_in_thousands() {
        assert_eq!(thousands(465_000.0), "465,000");
        assert_eq!(thousands(-1_234.4), "-1,234");
        assert_eq!(thousands(12.0), "12");
    }
}
