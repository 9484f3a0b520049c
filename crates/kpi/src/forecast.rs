//! Where a KPI will stand at the end of the financial year: a forecast from
//! its monthly history, with 80% and 95% prediction intervals, and beside it
//! the error the same method made at every earlier month it could have been
//! used (a backtest at the same horizon).
//!
//! The method, from `augurs` (Grafana's time-series toolkit):
//! - with [`SEASONAL_MONTHS`] or more months, MSTL: the series less a
//!   12-month season estimated (by LOESS) from the same months of earlier
//!   years, forecast by the ETS model of lowest AICc (error, trend and
//!   damping chosen automatically), the season added back;
//! - with fewer, the ETS model alone (no season).
//!
//! A level KPI (take-up, completion, satisfaction, cost per transaction) is
//! forecast as its value in the year's last month. A running total
//! (savings year to date) is the total so far plus the forecast months'
//! sum; its intervals add the months' interval widths, which is wider than
//! the sum's true interval whenever the months' errors are not perfectly
//! correlated, so it covers at least its stated rate.
//!
//! The model's own intervals leave out the uncertainty of choosing it and
//! of estimating the season; where they are narrower than the root mean
//! square error of the backtest, they are widened to it (and the method
//! says by how much).
//!
//! With fewer than [`MIN_TRAINING_MONTHS`] + horizon + [`MIN_BACKTESTS`] − 1
//! months there is no forecast: [`Outlook::TooLittleHistory`].

use augurs_core::{Fit, Forecast, Predict};
use augurs_ets::trend::AutoETSTrendModel;
use augurs_ets::AutoETS;
use augurs_mstl::MSTLModel;
use serde::Serialize;

/// Months a model is fitted on at least.
pub const MIN_TRAINING_MONTHS: usize = 12;
/// Months from which a 12-month season is estimated (two of each month).
pub const SEASONAL_MONTHS: usize = 24;
/// Earlier months a forecast must have been tried from before one is given.
pub const MIN_BACKTESTS: usize = 3;
/// The prediction intervals given, as levels.
pub const LEVELS: [f64; 2] = [0.80, 0.95];
/// The standard normal quantile of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// How a KPI accrues through the year.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Accrual {
    /// A month's own value (a rate, a share, a unit cost).
    Level,
    /// A running total through the year (savings year to date).
    RunningTotal,
}

/// One projected month: the forecast and its intervals.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Projection {
    pub value: f64,
    pub low80: f64,
    pub high80: f64,
    pub low95: f64,
    pub high95: f64,
}

impl Projection {
    /// Each bound `factor` times as far from the value.
    fn widened(self, factor: f64) -> Self {
        let away = |bound: f64| self.value + (bound - self.value) * factor;
        Self {
            value: self.value,
            low80: away(self.low80),
            high80: away(self.high80),
            low95: away(self.low95),
            high95: away(self.high95),
        }
    }

    /// Each bound kept within `min..=max` (a percentage within 0–100).
    pub fn clamped(self, min: f64, max: f64) -> Self {
        let clamp = |value: f64| value.clamp(min, max);
        Self {
            value: clamp(self.value),
            low80: clamp(self.low80),
            high80: clamp(self.high80),
            low95: clamp(self.low95),
            high95: clamp(self.high95),
        }
    }
}

/// A forecast to the year's end.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct YearEnd {
    /// The model, in words.
    pub method: String,
    /// Months of history the forecast rests on.
    pub history_months: usize,
    /// Each month after the history to the year's end; the last is the
    /// year-end figure. For a running total, the total to that month.
    pub path: Vec<Projection>,
    /// The mean absolute error of the same forecast (same method, same
    /// horizon) made from each earlier month whose outcome is known.
    pub backtest_mae: f64,
    /// How many earlier months that error is over.
    pub backtests: usize,
}

impl YearEnd {
    /// The year-end figure: the path's last month.
    pub fn year_end(&self) -> Option<&Projection> {
        self.path.last()
    }
}

/// A forecast, or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub enum Outlook {
    Forecast(YearEnd),
    TooLittleHistory { months: usize, needed: usize },
}

/// Why a model could not be fitted to a history that was long enough.
#[derive(Debug, thiserror::Error)]
#[error("forecasting: {0}")]
pub struct ForecastError(String);

/// Months of history needed to forecast `horizon` months ahead.
pub fn months_needed(horizon: usize) -> usize {
    MIN_TRAINING_MONTHS + horizon + MIN_BACKTESTS - 1
}

/// The forecast `horizon` months (1 or more) past the end of `history` (one
/// value a month, oldest first, no gaps), with a backtest. For a running
/// total, `so_far` is the total of the year's months in the history (0 when
/// the history ends with a year).
pub fn year_end(
    history: &[f64],
    horizon: usize,
    accrual: Accrual,
    so_far: f64,
) -> Result<Outlook, ForecastError> {
    let needed = months_needed(horizon.max(1));
    if horizon == 0 || history.len() < needed || history.iter().any(|v| !v.is_finite()) {
        return Ok(Outlook::TooLittleHistory {
            months: history.len(),
            needed,
        });
    }
    let (method, bands) = fit_and_predict(history, horizon)?;
    let path = project(&bands, accrual, so_far);
    let errors = backtest_errors(history, horizon, accrual)?;
    let backtests = errors.len();
    let backtest_mae = errors.iter().map(|e| e.abs()).sum::<f64>() / backtests as f64;
    // The model's intervals leave out the uncertainty of its own choice and
    // of the season: where they are narrower than the errors it made from
    // earlier months, they are widened to them.
    let rmse = (errors.iter().map(|e| e * e).sum::<f64>() / backtests as f64).sqrt();
    let widening = path
        .last()
        .map(|end| (end.high95 - end.low95) / (2.0 * Z95))
        .filter(|sd| *sd > 0.0)
        .map_or(1.0, |sd| (rmse / sd).max(1.0));
    let (path, method) = if widening > 1.0 {
        let widened = path.iter().map(|p| p.widened(widening)).collect();
        let method = format!(
            "{method}; intervals widened {widening:.2}× to the backtest's root mean square error"
        );
        (widened, method)
    } else {
        (path, method)
    };
    Ok(Outlook::Forecast(YearEnd {
        method,
        history_months: history.len(),
        path,
        backtest_mae,
        backtests,
    }))
}

/// The mean absolute error of the quantity forecast `horizon` months ahead
/// from every earlier month with at least [`MIN_TRAINING_MONTHS`] behind it
/// and its outcome known, and how many such months.
pub fn backtest(
    history: &[f64],
    horizon: usize,
    accrual: Accrual,
) -> Result<(f64, usize), ForecastError> {
    let errors = backtest_errors(history, horizon, accrual)?;
    Ok((
        errors.iter().map(|e| e.abs()).sum::<f64>() / errors.len() as f64,
        errors.len(),
    ))
}

/// Each earlier month's error (forecast − outcome) of the quantity
/// forecast `horizon` months ahead, oldest first.
fn backtest_errors(
    history: &[f64],
    horizon: usize,
    accrual: Accrual,
) -> Result<Vec<f64>, ForecastError> {
    let mut errors = Vec::new();
    for end in MIN_TRAINING_MONTHS..=history.len().saturating_sub(horizon) {
        let (_, bands) = fit_and_predict(&history[..end], horizon)?;
        let forecast = outcome(&bands[0].point, accrual);
        let actual = outcome(&history[end..end + horizon], accrual);
        errors.push(forecast - actual);
    }
    if errors.is_empty() {
        return Err(ForecastError("no earlier month to backtest from".into()));
    }
    Ok(errors)
}

/// What the forecast of the next months says of the year's end: the last
/// month's value, or the months' sum.
fn outcome(months: &[f64], accrual: Accrual) -> f64 {
    match accrual {
        Accrual::Level => months.last().copied().unwrap_or(f64::NAN),
        Accrual::RunningTotal => months.iter().sum(),
    }
}

/// The method's point forecasts of the `horizon` months after `history`.
pub fn point_forecast(history: &[f64], horizon: usize) -> Result<Vec<f64>, ForecastError> {
    let (_, mut bands) = fit_and_predict(history, horizon)?;
    Ok(bands.swap_remove(0).point)
}

/// The method's name and its forecast at each of [`LEVELS`].
fn fit_and_predict(
    history: &[f64],
    horizon: usize,
) -> Result<(String, Vec<Forecast>), ForecastError> {
    let error = |error: &dyn std::fmt::Display| ForecastError(error.to_string());
    if history.len() >= SEASONAL_MONTHS {
        let model = MSTLModel::new(vec![12], AutoETSTrendModel::from(AutoETS::non_seasonal()));
        let fitted = model.fit(history).map_err(|e| error(&e))?;
        let bands = LEVELS
            .iter()
            .map(|&level| fitted.predict(horizon, level).map_err(|e| error(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        let method = format!(
            "MSTL with a 12-month season and an automatically chosen ETS trend (augurs), from {} months",
            history.len()
        );
        Ok((method, bands))
    } else {
        let fitted = AutoETS::non_seasonal()
            .fit(history)
            .map_err(|e| error(&e))?;
        let bands = LEVELS
            .iter()
            .map(|&level| fitted.predict(horizon, level).map_err(|e| error(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        let model = fitted.model();
        let damped = if model.damped() { " damped" } else { "" };
        let method = format!(
            "ETS {}{damped} chosen by AICc (augurs), no season (fewer than {SEASONAL_MONTHS} months), from {} months",
            model.model_type(),
            history.len()
        );
        Ok((method, bands))
    }
}

/// The path of projections from the forecasts at each level: each month's
/// own, or the running total from `so_far`.
fn project(bands: &[Forecast], accrual: Accrual, so_far: f64) -> Vec<Projection> {
    let interval = |level: usize, month: usize| {
        bands[level]
            .intervals
            .as_ref()
            .map(|intervals| (intervals.lower[month], intervals.upper[month]))
            .unwrap_or((f64::NAN, f64::NAN))
    };
    let mut total = Projection {
        value: so_far,
        low80: so_far,
        high80: so_far,
        low95: so_far,
        high95: so_far,
    };
    (0..bands[0].point.len())
        .map(|month| {
            let value = bands[0].point[month];
            let (low80, high80) = interval(0, month);
            let (low95, high95) = interval(1, month);
            let own = Projection {
                value,
                low80,
                high80,
                low95,
                high95,
            };
            match accrual {
                Accrual::Level => own,
                Accrual::RunningTotal => {
                    total = Projection {
                        value: total.value + own.value,
                        low80: total.low80 + own.low80,
                        high80: total.high80 + own.high80,
                        low95: total.low95 + own.low95,
                        high95: total.high95 + own.high95,
                    };
                    total
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A series with a trend, a 12-month season and a little deterministic noise.
    fn series(months: usize) -> Vec<f64> {
        (0..months)
            .map(|m| {
                let season = (m as f64 * std::f64::consts::TAU / 12.0).sin() * 3.0;
                let noise = ((m * 7919) % 13) as f64 / 13.0 - 0.5;
                40.0 + 0.25 * m as f64 + season + noise
            })
            .collect()
    }

    fn forecast(outlook: Outlook) -> YearEnd {
        match outlook {
            Outlook::Forecast(year_end) => year_end,
            Outlook::TooLittleHistory { months, needed } => {
                panic!("no forecast from {months} months ({needed} needed)")
            }
        }
    }

    #[test]
    fn too_little_history_gives_no_forecast_and_says_how_much_is_needed() {
        let outlook = year_end(&series(16), 6, Accrual::Level, 0.0).expect("outlook");
        assert_eq!(
            outlook,
            Outlook::TooLittleHistory {
                months: 16,
                needed: 20
            }
        );
        let outlook = year_end(&series(20), 0, Accrual::Level, 0.0).expect("outlook");
        assert!(matches!(outlook, Outlook::TooLittleHistory { .. }));
    }

    #[test]
    fn a_trend_with_a_season_is_followed_and_its_intervals_nest() {
        let history = series(36);
        let year_end = forecast(year_end(&history, 6, Accrual::Level, 0.0).expect("outlook"));
        assert!(year_end.method.starts_with("MSTL"), "{}", year_end.method);
        assert_eq!(year_end.path.len(), 6);
        let truth = series(42)[41];
        let last = year_end.year_end().expect("a year end");
        assert!(
            (last.value - truth).abs() < 2.5,
            "{} against {truth}",
            last.value
        );
        for p in &year_end.path {
            assert!(p.low95 <= p.low80 && p.low80 <= p.value && p.value <= p.high80);
            assert!(p.high80 <= p.high95);
        }
        // Backtests from months 12..=30, each six months ahead.
        assert_eq!(year_end.backtests, 36 - 6 - 12 + 1);
    }

    #[test]
    fn fewer_than_two_years_use_ets_without_a_season() {
        let year_end = forecast(year_end(&series(20), 3, Accrual::Level, 0.0).expect("outlook"));
        assert!(year_end.method.starts_with("ETS "), "{}", year_end.method);
        assert_eq!(year_end.backtests, 20 - 3 - 12 + 1);
    }

    #[test]
    fn a_running_total_adds_the_forecast_months_to_the_total_so_far() {
        let history: Vec<f64> = series(30).iter().map(|v| v * 1_000.0).collect();
        let level = forecast(year_end(&history, 4, Accrual::Level, 0.0).expect("outlook"));
        let total =
            forecast(year_end(&history, 4, Accrual::RunningTotal, 50_000.0).expect("outlook"));
        let sum: f64 = level.path.iter().map(|p| p.value).sum();
        let last = total.year_end().expect("a year end");
        assert!((last.value - (50_000.0 + sum)).abs() < 1e-6);
        // The total's interval widens month by month.
        for pair in total.path.windows(2) {
            assert!(pair[1].high95 - pair[1].low95 > pair[0].high95 - pair[0].low95);
        }
    }

    #[test]
    fn the_backtest_error_is_the_mean_of_each_earlier_months_error() {
        let history = series(26);
        let (mae, n) = backtest(&history, 2, Accrual::Level).expect("backtest");
        // Computed again here, one origin at a time.
        let mut errors = Vec::new();
        for end in 12..=24 {
            let points = point_forecast(&history[..end], 2).expect("fit");
            errors.push((points[1] - history[end + 1]).abs());
        }
        assert_eq!(n, errors.len());
        assert!((mae - errors.iter().sum::<f64>() / errors.len() as f64).abs() < 1e-9);
    }
}
