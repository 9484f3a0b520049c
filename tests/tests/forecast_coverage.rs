//! The year-end forecast on simulator data with a known trend (digital
//! share rising in a straight line) and seasonality (services' seasonal
//! volumes): over many seeds, its intervals cover the true year-end value
//! at about their stated rates, and its backtest error is the error the
//! test computes itself, origin by origin. Pure computation: no broker, no
//! ClickHouse.

use channelshift_kpi::forecast::{point_forecast, year_end, Accrual, Outlook, MIN_TRAINING_MONTHS};
use channelshift_simulator::{Generator, Scenario};
use chrono::NaiveDate;

const COUNCIL: &str = "E07000041";
const SEEDS: u64 = 60;
/// Three financial years, the last ending in March 2026.
const MONTHS: u32 = 36;
/// History to September: six months to forecast.
const HISTORY: usize = 30;
const HORIZON: usize = 6;

/// Each month's digital take-up (% of completed transactions through web,
/// app or kiosk), as the simulator counted it, oldest first.
fn monthly_take_up(seed: u64) -> Vec<f64> {
    let mut scenario = Scenario::district();
    scenario.seed = seed;
    scenario.months = MONTHS;
    scenario.end = NaiveDate::from_ymd_opt(2026, 3, 31).expect("a date");
    scenario.contacts = Some(u64::from(MONTHS) * 700);
    scenario
        .select_council(COUNCIL)
        .expect("the district council");
    let mut generator = Generator::new(scenario);
    while generator.next_batch().is_some() {}
    let months = &generator.truth.councils[COUNCIL].months;
    assert_eq!(months.len(), MONTHS as usize, "a value every month");
    months
        .values()
        .map(|month| {
            100.0 * month.digital_completed_transactions as f64
                / month.completed_transactions as f64
        })
        .collect()
}

#[test]
fn year_end_intervals_cover_the_true_value_at_about_their_stated_rates_over_many_seeds() {
    let (mut within80, mut within95, mut forecasts) = (0, 0, 0);
    let mut absolute_errors = Vec::new();
    for seed in 0..SEEDS {
        let months = monthly_take_up(seed);
        let truth = months[HISTORY + HORIZON - 1];
        let outlook = year_end(&months[..HISTORY], HORIZON, Accrual::Level, 0.0)
            .expect("a forecast can be fitted");
        let Outlook::Forecast(forecast) = outlook else {
            panic!("30 months are enough to forecast 6 ahead");
        };
        let end = forecast.year_end().expect("a year-end month");
        forecasts += 1;
        within80 += u32::from(end.low80 <= truth && truth <= end.high80);
        within95 += u32::from(end.low95 <= truth && truth <= end.high95);
        absolute_errors.push((end.value - truth).abs());
    }
    let coverage80 = f64::from(within80) / forecasts as f64;
    let coverage95 = f64::from(within95) / forecasts as f64;
    let mae = absolute_errors.iter().sum::<f64>() / absolute_errors.len() as f64;
    println!(
        "coverage over {forecasts} seeds: 80% interval {:.0}%, 95% interval {:.0}%; mean absolute error {mae:.2} points",
        coverage80 * 100.0,
        coverage95 * 100.0
    );
    // With 60 seeds a rate of 80% is measured within about ±10 points
    // (two standard errors), 95% within about ±6.
    assert!(
        (0.68..=0.92).contains(&coverage80),
        "80% interval covers {coverage80:.2}"
    );
    assert!(coverage95 >= 0.87, "95% interval covers {coverage95:.2}");
}

#[test]
fn the_backtest_error_is_each_earlier_months_error_averaged() {
    let months = monthly_take_up(7);
    let history = &months[..HISTORY];
    let Outlook::Forecast(forecast) =
        year_end(history, HORIZON, Accrual::Level, 0.0).expect("a forecast")
    else {
        panic!("30 months are enough to forecast 6 ahead");
    };
    // From every month with a year of history behind it whose sixth month
    // after is in the history: forecast, and compare with what happened.
    let mut errors = Vec::new();
    for end in MIN_TRAINING_MONTHS..=HISTORY - HORIZON {
        let points = point_forecast(&history[..end], HORIZON).expect("a fit");
        errors.push((points[HORIZON - 1] - history[end + HORIZON - 1]).abs());
    }
    assert_eq!(forecast.backtests, errors.len());
    let mae = errors.iter().sum::<f64>() / errors.len() as f64;
    assert!(
        (forecast.backtest_mae - mae).abs() < 1e-9,
        "{} against {mae}",
        forecast.backtest_mae
    );

    // A running total: the error of each origin's sum of the next six months.
    let Outlook::Forecast(total) =
        year_end(history, HORIZON, Accrual::RunningTotal, 0.0).expect("a forecast")
    else {
        panic!("30 months are enough");
    };
    let mut errors = Vec::new();
    for end in MIN_TRAINING_MONTHS..=HISTORY - HORIZON {
        let points = point_forecast(&history[..end], HORIZON).expect("a fit");
        let actual: f64 = history[end..end + HORIZON].iter().sum();
        errors.push((points.iter().sum::<f64>() - actual).abs());
    }
    let mae = errors.iter().sum::<f64>() / errors.len() as f64;
    assert!((total.backtest_mae - mae).abs() < 1e-9);
}
