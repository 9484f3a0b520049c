//! The Grafana dashboards in `dashboards/` as the tests read them: their
//! panels and queries, the expansion Grafana and the ClickHouse data source
//! apply to a query before it runs, and the metric names a PromQL query reads.

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The data-source type of the official ClickHouse plugin.
pub const CLICKHOUSE: &str = "grafana-clickhouse-datasource";
pub const PROMETHEUS: &str = "prometheus";

/// The columns of the KPI overview's scorecard panel, in order.
pub const SCORECARD_PANEL_COLUMNS: [&str; 8] = [
    "kpi",
    "value",
    "n",
    "target",
    "tolerance",
    "annual_target",
    "polarity",
    "rag",
];

/// The repository's top folder. Read at run time (cargo sets
/// `CARGO_MANIFEST_DIR` for the tests it runs): checkouts sharing one target
/// directory share this library's build, so a compile-time path could be
/// another checkout's.
pub fn repository_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .expect("the tests crate sits one level below the repository root")
}

/// One dashboard file.
pub struct Dashboard {
    pub file: String,
    pub json: Value,
}

/// Every `dashboards/*.json`, by file name.
pub fn load_dashboards() -> Result<Vec<Dashboard>> {
    let dir = repository_root().join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)?;
            let json = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            Ok(Dashboard {
                file: path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                json,
            })
        })
        .collect()
}

impl Dashboard {
    /// Every panel, including those inside collapsed rows.
    pub fn panels(&self) -> Vec<&Value> {
        fn walk<'a>(panels: &'a Value, into: &mut Vec<&'a Value>) {
            for panel in panels.as_array().into_iter().flatten() {
                into.push(panel);
                walk(&panel["panels"], into);
            }
        }
        let mut panels = Vec::new();
        walk(&self.json["panels"], &mut panels);
        panels
    }

    /// The template variables.
    pub fn variables(&self) -> Vec<&Value> {
        self.json["templating"]["list"]
            .as_array()
            .map(|list| list.iter().collect())
            .unwrap_or_default()
    }

    /// Every query of a panel or variable on the given data-source type, with
    /// a name for messages: `(name, query)`, where query is the panel target.
    pub fn queries(&self, datasource_type: &str) -> Vec<(String, &Value)> {
        let mut queries = Vec::new();
        for panel in self.panels() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let kind = target["datasource"]["type"]
                    .as_str()
                    .or(panel["datasource"]["type"].as_str());
                if kind == Some(datasource_type) {
                    let name = format!(
                        "{}: panel \"{}\" query {}",
                        self.file,
                        panel["title"].as_str().unwrap_or("?"),
                        target["refId"].as_str().unwrap_or("?")
                    );
                    queries.push((name, target));
                }
            }
        }
        queries
    }
}

/// The dashboard time range, as Grafana passes it to the data source.
#[derive(Clone, Copy, Debug)]
pub struct TimeRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// A ClickHouse panel's SQL as the data source sends it: Grafana's template
/// variables replaced (single values raw, `${name:singlequote}` and multiple
/// values as `'a','b'`), then the plugin's macros `$__timeFilter(column)`,
/// `$__dateFilter(column)`, `$__fromTime` and `$__toTime` expanded as the
/// plugin does (`pkg/macros/macros.go`). Anything else starting with `$` is an
/// error, so a query using a macro this does not know fails loudly.
pub fn expand_sql(
    sql: &str,
    range: TimeRange,
    variables: &BTreeMap<String, Vec<String>>,
) -> Result<String> {
    let datetime = |time: DateTime<Utc>| format!("toDateTime({})", time.timestamp());
    let date = |time: DateTime<Utc>| format!("toDate('{}')", time.format("%Y-%m-%d"));
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$__") {
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let (name, tail) = after.split_at(name_len);
            let (argument, tail) = match tail.strip_prefix('(') {
                Some(inner) => {
                    let close = inner
                        .find(')')
                        .with_context(|| format!("unclosed $__{name}( in {sql}"))?;
                    (Some(inner[..close].trim()), &inner[close + 1..])
                }
                None => (None, tail),
            };
            let expanded = match (name, argument) {
                ("fromTime", None) => datetime(range.from),
                ("toTime", None) => datetime(range.to),
                ("timeFilter", Some(column)) => format!(
                    "{column} >= {} AND {column} <= {}",
                    datetime(range.from),
                    datetime(range.to)
                ),
                ("dateFilter", Some(column)) => format!(
                    "{column} >= {} AND {column} <= {}",
                    date(range.from),
                    date(range.to)
                ),
                _ => bail!("macro $__{name} is not supported by this expansion: {sql}"),
            };
            out.push_str(&expanded);
            rest = tail;
            continue;
        }
        let (name, format, tail) = if let Some(braced) = rest.strip_prefix("${") {
            let close = braced
                .find('}')
                .with_context(|| format!("unclosed ${{ in {sql}"))?;
            let inside = &braced[..close];
            let (name, format) = match inside.split_once(':') {
                Some((name, format)) => (name, Some(format)),
                None => (inside, None),
            };
            (name, format, &braced[close + 1..])
        } else {
            let plain = &rest[1..];
            let len = plain
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(plain.len());
            (&plain[..len], None, &plain[len..])
        };
        let values = variables
            .get(name)
            .with_context(|| format!("no value chosen for variable ${name} in {sql}"))?;
        let quoted = || {
            values
                .iter()
                .map(|value| format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'")))
                .collect::<Vec<_>>()
                .join(",")
        };
        let expanded = match format {
            // Grafana's `encodeURIComponentStrict`, of `{a,b}` for several values.
            Some("percentencode") if values.len() > 1 => {
                percent_encode(&format!("{{{}}}", values.join(",")))
            }
            Some("percentencode") => percent_encode(values.first().map_or("", String::as_str)),
            Some("singlequote") => quoted(),
            None if values.len() > 1 => quoted(),
            None | Some("raw") => values.join(","),
            Some(other) => bail!("variable format :{other} is not supported: {sql}"),
        };
        out.push_str(&expanded);
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// JavaScript's `encodeURIComponent` with `!'()*` encoded too, as Grafana's
/// `:percentencode` format does: only `A-Z a-z 0-9 - _ . ~` stay as they are.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A PromQL expression with Grafana's interval variables given values a
/// Prometheus server accepts.
pub fn expand_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "5m")
}

/// The metric names a PromQL expression reads: every `channelshift_*` name and
/// `up`, outside label matchers, strings and ranges.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut depth_braces = 0usize;
    let mut depth_brackets = 0usize;
    let mut quote: Option<char> = None;
    let mut token = String::new();
    let mut flush = |token: &mut String, next: char, inside: bool| {
        if !inside && next != '(' && (token.starts_with("channelshift_") || token.as_str() == "up")
        {
            names.insert(token.clone());
        }
        token.clear();
    };
    for c in expr.chars().chain(std::iter::once(' ')) {
        if let Some(open) = quote {
            if c == open {
                quote = None;
            }
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            token.push(c);
            continue;
        }
        let inside = depth_braces > 0 || depth_brackets > 0;
        if !token.is_empty() {
            flush(&mut token, c, inside);
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '{' => depth_braces += 1,
            '}' => depth_braces = depth_braces.saturating_sub(1),
            '[' => depth_brackets += 1,
            ']' => depth_brackets = depth_brackets.saturating_sub(1),
            _ => {}
        }
    }
    names
}

/// The sample names in Prometheus text exposition (`_bucket`, `_sum` and
/// `_count` included, as they are scraped).
pub fn scraped_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Runs `sql` as `reader` (the dashboards' user, as Grafana's data source
/// would) and returns the column names and rows.
pub async fn run_sql(
    reader: &channelshift_store::ClickHouseConfig,
    sql: &str,
) -> Result<(Vec<String>, Vec<Vec<Value>>)> {
    let response = reqwest::Client::new()
        .post(&reader.url)
        .query(&[
            ("database", reader.database.as_str()),
            ("default_format", "JSONCompact"),
            ("output_format_json_quote_64bit_integers", "0"),
        ])
        .header("X-ClickHouse-User", &reader.user)
        .header(
            "X-ClickHouse-Key",
            secrecy::ExposeSecret::expose_secret(&reader.password),
        )
        .body(sql.to_string())
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("ClickHouse refused the query ({status}): {text}\n{sql}");
    }
    let body: Value = serde_json::from_str(&text)?;
    let columns = body["meta"]
        .as_array()
        .context("meta")?
        .iter()
        .map(|column| column["name"].as_str().unwrap_or_default().to_string())
        .collect();
    let rows = body["data"]
        .as_array()
        .context("data")?
        .iter()
        .map(|row| row.as_array().cloned().unwrap_or_default())
        .collect();
    Ok((columns, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range() -> TimeRange {
        TimeRange {
            from: "2025-03-31T23:00:00Z".parse().expect("valid"),
            to: "2025-06-30T22:59:59Z".parse().expect("valid"),
        }
    }

    #[test]
    fn macros_and_variables_expand_as_grafana_and_the_plugin_do() {
        let variables = BTreeMap::from([
            ("council".to_string(), vec!["E07000041".to_string()]),
            (
                "service".to_string(),
                vec!["waste".to_string(), "o'neil".to_string()],
            ),
        ]);
        let sql = "SELECT 1 WHERE council = '${council}' AND service IN (${service:singlequote}) \
                   AND $__timeFilter(occurred_at) AND $__dateFilter( day ) AND x IN ($service) \
                   AND t < $__toTime AND c = '$council'";
        assert_eq!(
            expand_sql(sql, range(), &variables).expect("expands"),
            "SELECT 1 WHERE council = 'E07000041' AND service IN ('waste','o\\'neil') \
             AND occurred_at >= toDateTime(1743462000) AND occurred_at <= toDateTime(1751324399) \
             AND day >= toDate('2025-03-31') AND day <= toDate('2025-06-30') \
             AND x IN ('waste','o\\'neil') AND t < toDateTime(1751324399) AND c = 'E07000041'"
        );
    }

    #[test]
    fn an_unknown_macro_or_variable_is_an_error() {
        let none = BTreeMap::new();
        assert!(expand_sql("SELECT $__timeInterval(t)", range(), &none).is_err());
        assert!(expand_sql("SELECT ${council}", range(), &none).is_err());
    }

    #[test]
    fn metric_names_skip_functions_labels_strings_and_ranges() {
        let expr = r#"sum by (topic) (rate(channelshift_ingest_messages_rejected_total{job="channelshift-ingest",reason!~"channelshift_x"}[5m])) / on (instance) up{job="x"} and time() - channelshift_ingest_last_insert_timestamp_seconds"#;
        let names: Vec<String> = metric_names(expr).into_iter().collect();
        assert_eq!(
            names,
            [
                "channelshift_ingest_last_insert_timestamp_seconds",
                "channelshift_ingest_messages_rejected_total",
                "up"
            ]
        );
    }
}
