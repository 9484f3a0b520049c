//! The ClickHouse cluster DDL in `deploy/clickhouse/` is the store's own
//! migrations (`channelshift_store::MIGRATIONS`) rewritten for a cluster, so
//! it cannot drift from them: this test derives both layouts from the
//! migrations and fails if the files differ. After a new migration, run
//!   CHANNELSHIFT_UPDATE_CLUSTER_DDL=1 cargo test -p channelshift-tests --test cluster_ddl
//! to rewrite them, and read the diff.
//!
//! - `cluster-replicated.sql`: one shard, any number of replicas; the same
//!   table names, Replicated engines. Works with the code as it is.
//! - `cluster-sharded.sql`: several shards; each table becomes `<name>_local`
//!   (replicated) behind a Distributed table of the old name, sharded by
//!   council. See deploy/SCALING.md for what it does not support.

use anyhow::{Context, Result};
use channelshift_store::{MIGRATIONS, ROLLUPS, ROLLUPS_PLACEHOLDER};
use channelshift_tests::grafana::repository_root;

const ON_CLUSTER: &str = "ON CLUSTER '{cluster}'";

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    Replicated,
    Sharded,
}

/// The statement with the 12-space indent of the Rust source removed.
fn dedent(statement: &str) -> String {
    statement
        .lines()
        .map(|line| line.strip_prefix("            ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// `ENGINE = X` or `ENGINE = X(args)` → its Replicated form. An engine with
/// arguments needs the replication path spelt out; `{uuid}` (Atomic
/// databases) keeps every table's path distinct, `{shard}`/`{replica}` are
/// the servers' macros.
fn replicate_engine(statement: &str) -> Result<String> {
    let at = statement.find("ENGINE = ").context("no ENGINE")? + "ENGINE = ".len();
    let rest = &statement[at..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    let engine = &rest[..end];
    let replicated = match engine.split_once('(') {
        Some((name, args)) => format!(
            "Replicated{name}('/clickhouse/tables/{{uuid}}/{{shard}}', '{{replica}}', {args}"
        ),
        None => format!("Replicated{engine}"),
    };
    Ok(format!("{}{replicated}{}", &statement[..at], &rest[end..]))
}

fn name_after<'a>(statement: &'a str, prefix: &str) -> Result<&'a str> {
    let rest = statement
        .strip_prefix(prefix)
        .with_context(|| format!("expected {prefix}"))?;
    rest.split_whitespace().next().context("no name")
}

/// The sharding key of a Distributed table: a council's rows stay together.
fn sharding_key(table: &str) -> &'static str {
    if table == "ingest_checkpoints" {
        "cityHash64(topic, partition)"
    } else if table == "ingest_fences" {
        "cityHash64(stream, partition)"
    } else if table == "raw_retention" {
        "cityHash64(raw_table)"
    } else if table == "lsoa_imd" {
        "cityHash64(lsoa)"
    } else if table == "definitions_generations" {
        "cityHash64(generation)"
    } else if table == "rollup_coverage" {
        "cityHash64(rollup)"
    } else if table == "ingest_freshness" {
        "cityHash64(raw_table, council)"
    } else {
        "cityHash64(council)"
    }
}

/// The rollups' database when the store's is `channelshift`.
const ROLLUPS_DATABASE: &str = "channelshift_rollups";

fn rewrite(statement: &str, layout: Layout) -> Result<Vec<String>> {
    let statement = dedent(statement).replace(ROLLUPS_PLACEHOLDER, ROLLUPS_DATABASE);
    if let Some(database) = statement.strip_prefix("CREATE DATABASE IF NOT EXISTS ") {
        return Ok(vec![format!(
            "CREATE DATABASE IF NOT EXISTS {database} {ON_CLUSTER}"
        )]);
    }
    if let Some(rest) = statement.strip_prefix("RENAME TABLE ") {
        let (from, to) = rest.split_once(" TO ").context("RENAME without TO")?;
        return Ok(match layout {
            Layout::Replicated => vec![format!("RENAME TABLE {from} TO {to} {ON_CLUSTER}")],
            // The shards' tables move; the Distributed table in front of
            // them is made again in the new database, pointing at them there.
            Layout::Sharded => {
                let (database, name) = to.split_once('.').context("RENAME to another database")?;
                vec![
                    format!("RENAME TABLE {from}_local TO {to}_local {ON_CLUSTER}"),
                    format!("DROP TABLE IF EXISTS {from} {ON_CLUSTER}"),
                    format!(
                        "CREATE TABLE IF NOT EXISTS {to} {ON_CLUSTER} AS {to}_local\n\
                         ENGINE = Distributed('{{cluster}}', '{database}', {name}_local, {})",
                        sharding_key(name)
                    ),
                ]
            }
        });
    }
    if statement.starts_with("INSERT INTO ") {
        // Into a Replicated table (one replica's insert reaches all) or a
        // Distributed one (which sends each row to its shard).
        return Ok(vec![statement]);
    }
    if statement.starts_with("CREATE TABLE IF NOT EXISTS ") {
        let name = name_after(&statement, "CREATE TABLE IF NOT EXISTS ")?;
        let head = format!("CREATE TABLE IF NOT EXISTS {name}");
        if name.ends_with("_staging") {
            // Rows wait here for the length of one INSERT … SELECT on the
            // server ingest is connected to: a local table on each server,
            // neither replicated nor distributed.
            return Ok(vec![statement.replacen(
                &head,
                &format!("{head} {ON_CLUSTER}"),
                1,
            )]);
        }
        let mut table = replicate_engine(&statement)?;
        if ROLLUPS.iter().any(|rollup| rollup.table == name) {
            // A rollup block can equal an earlier one (same counts in the
            // same cells) and must not be dropped as a duplicate insert.
            table.push_str("\nSETTINGS replicated_deduplication_window = 0");
        }
        Ok(match layout {
            Layout::Replicated => vec![table.replacen(&head, &format!("{head} {ON_CLUSTER}"), 1)],
            Layout::Sharded => vec![
                table.replacen(
                    &head,
                    &format!("CREATE TABLE IF NOT EXISTS {name}_local {ON_CLUSTER}"),
                    1,
                ),
                match name.split_once('.') {
                    Some((database, table)) => format!(
                        "CREATE TABLE IF NOT EXISTS {name} {ON_CLUSTER} AS {name}_local\n\
                         ENGINE = Distributed('{{cluster}}', '{database}', {table}_local, {})",
                        sharding_key(table)
                    ),
                    None => format!(
                        "CREATE TABLE IF NOT EXISTS {name} {ON_CLUSTER} AS {name}_local\n\
                         ENGINE = Distributed('{{cluster}}', currentDatabase(), {name}_local, {})",
                        sharding_key(name)
                    ),
                },
            ],
        })
    } else if statement.starts_with("CREATE MATERIALIZED VIEW IF NOT EXISTS ") {
        let name = name_after(&statement, "CREATE MATERIALIZED VIEW IF NOT EXISTS ")?;
        let head = format!("CREATE MATERIALIZED VIEW IF NOT EXISTS {name}");
        let mut view = statement.replacen(&head, &format!("{head} {ON_CLUSTER}"), 1);
        if layout == Layout::Sharded {
            // A view fires on the shard that received the insert and writes
            // that shard's part of the rollup.
            let mut words = view.split_whitespace();
            let target = words
                .by_ref()
                .find(|word| *word == "TO")
                .and(words.next())
                .context("no TO")?
                .to_string();
            view = view.replacen(&format!("TO {target}"), &format!("TO {target}_local"), 1);
            for source in ["contact_events", "satisfaction_responses"] {
                view = view.replace(&format!("FROM {source}"), &format!("FROM {source}_local"));
            }
        }
        Ok(vec![view])
    } else if statement.starts_with("CREATE VIEW IF NOT EXISTS ") {
        // A plain view reads the (Replicated or Distributed) tables by name.
        let name = name_after(&statement, "CREATE VIEW IF NOT EXISTS ")?;
        let head = format!("CREATE VIEW IF NOT EXISTS {name}");
        Ok(vec![statement.replacen(
            &head,
            &format!("{head} {ON_CLUSTER}"),
            1,
        )])
    } else if let Some(name) = statement.strip_prefix("DROP TABLE IF EXISTS ") {
        // Views and tables alike; in the sharded layout views keep their name.
        Ok(vec![format!("DROP TABLE IF EXISTS {name} {ON_CLUSTER}")])
    } else {
        anyhow::bail!("no cluster form for: {statement}")
    }
}

fn cluster_ddl(layout: Layout) -> Result<String> {
    let (title, about) = match layout {
        Layout::Replicated => (
            "one shard, N replicas",
            "-- Same table names as a single server, Replicated engines: ingest, the API\n\
             -- and Grafana work unchanged against any replica. Every ingest replica\n\
             -- writes through one server, and the writer's profile sets\n\
             -- insert_quorum and select_sequential_consistency (deploy/SCALING.md).\n\
             -- The *_staging tables stay local to each server. rebuild-rollups' staging\n\
             -- table (CREATE TABLE ... AS the rollup) gets its own {uuid} replication\n\
             -- path, so it should too; not yet tried on a cluster (deploy/SCALING.md).\n",
        ),
        Layout::Sharded => (
            "several shards, each with replicas",
            "-- Each table is <name>_local on every server behind a Distributed table of\n\
             -- its single-server name, sharded by council. The writer's profile must set\n\
             -- insert_distributed_sync = 1 (ingest writes rows, then its checkpoint).\n\
             -- The *_staging tables stay local to each server.\n\
             -- rebuild-rollups does not work on this layout (see deploy/SCALING.md).\n",
        ),
    };
    let mut out = format!(
        "-- Channelshift on a ClickHouse cluster: {title}.\n\
         -- Generated from the store's migrations by tests/tests/cluster_ddl.rs; do not\n\
         -- edit by hand. Needs ClickHouse 22.x or later with Keeper/ZooKeeper, an\n\
         -- Atomic database, and the macros {{cluster}}, {{shard}} and {{replica}} in\n\
         -- each server's config. Run once, on any server, before ingest first starts:\n\
         --   clickhouse-client --multiquery --database channelshift < this-file.sql\n\
         -- (after CREATE DATABASE channelshift {ON_CLUSTER}). Ingest then finds every\n\
         -- migration recorded and every table present. The rollups live in\n\
         -- channelshift_rollups (migration 8), the database the dashboards' user\n\
         -- may read; a store database of another name has `<name>_rollups`.\n\
         {about}\n\
         -- Applied migrations, one replication group for the whole cluster.\n\
         CREATE TABLE IF NOT EXISTS schema_migrations {ON_CLUSTER} (\n\
         \x20   version UInt32,\n\
         \x20   name String,\n\
         \x20   applied_at DateTime DEFAULT now()\n\
         ) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{{uuid}}/all', '{{replica}}')\n\
         ORDER BY version;\n"
    );
    for migration in MIGRATIONS {
        out.push_str(&format!(
            "\n-- Migration {}: {}\n",
            migration.version, migration.name
        ));
        for statement in migration.statements {
            for rewritten in rewrite(statement, layout)? {
                out.push_str(&rewritten);
                out.push_str(";\n\n");
            }
        }
        out.push_str(&format!(
            "INSERT INTO schema_migrations (version, name) VALUES ({}, '{}');\n",
            migration.version,
            migration.name.replace('\\', "\\\\").replace('\'', "\\'")
        ));
    }
    Ok(out)
}

fn check(file: &str, layout: Layout) -> Result<()> {
    let path = repository_root().join("deploy/clickhouse").join(file);
    let wanted = cluster_ddl(layout)?;
    if std::env::var_os("CHANNELSHIFT_UPDATE_CLUSTER_DDL").is_some() {
        std::fs::write(&path, &wanted)?;
        return Ok(());
    }
    let found = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    assert!(
        found == wanted,
        "{} differs from the store's migrations: rerun with CHANNELSHIFT_UPDATE_CLUSTER_DDL=1",
        path.display()
    );
    Ok(())
}

#[test]
fn replicated_cluster_ddl_is_the_migrations_with_replicated_engines() -> Result<()> {
    check("cluster-replicated.sql", Layout::Replicated)
}

#[test]
fn sharded_cluster_ddl_is_the_migrations_behind_distributed_tables() -> Result<()> {
    check("cluster-sharded.sql", Layout::Sharded)
}

#[test]
fn every_table_and_view_of_the_migrations_has_its_cluster_form() -> Result<()> {
    let replicated = cluster_ddl(Layout::Replicated)?;
    let sharded = cluster_ddl(Layout::Sharded)?;
    for migration in MIGRATIONS {
        for statement in migration.statements {
            let statement = dedent(statement).replace(ROLLUPS_PLACEHOLDER, ROLLUPS_DATABASE);
            if let Some(rest) = statement.strip_prefix("RENAME TABLE ") {
                assert!(replicated.contains(&format!("RENAME TABLE {rest} {ON_CLUSTER}")));
                let (from, to) = rest.split_once(" TO ").context("TO")?;
                assert!(sharded.contains(&format!(
                    "RENAME TABLE {from}_local TO {to}_local {ON_CLUSTER}"
                )));
                assert!(sharded.contains(&format!("CREATE TABLE IF NOT EXISTS {to} {ON_CLUSTER}")));
                continue;
            }
            if statement.starts_with("INSERT INTO ") {
                for ddl in [&replicated, &sharded] {
                    assert!(ddl.contains(&statement));
                }
                continue;
            }
            if statement.starts_with("CREATE DATABASE IF NOT EXISTS ") {
                for ddl in [&replicated, &sharded] {
                    assert!(ddl.contains(&format!("{statement} {ON_CLUSTER}")));
                }
                continue;
            }
            if let Some(name) = statement.strip_prefix("DROP TABLE IF EXISTS ") {
                for ddl in [&replicated, &sharded] {
                    assert!(ddl.contains(&format!("DROP TABLE IF EXISTS {name} {ON_CLUSTER}")));
                }
                continue;
            }
            let kind = if statement.starts_with("CREATE TABLE") {
                "CREATE TABLE IF NOT EXISTS "
            } else if statement.starts_with("CREATE VIEW") {
                "CREATE VIEW IF NOT EXISTS "
            } else {
                "CREATE MATERIALIZED VIEW IF NOT EXISTS "
            };
            let name = name_after(&statement, kind)?;
            assert!(
                replicated.contains(&format!("{kind}{name} {ON_CLUSTER}")),
                "{name}"
            );
            assert!(
                sharded.contains(&format!("{kind}{name} {ON_CLUSTER}")),
                "{name}"
            );
            if kind.starts_with("CREATE TABLE") && !name.ends_with("_staging") {
                assert!(sharded.contains(&format!("{kind}{name}_local {ON_CLUSTER}")));
            }
        }
    }
    // Nothing single-server is left: every engine is Replicated or Distributed.
    for ddl in [&replicated, &sharded] {
        // Except the staging tables: one of its own on each server.
        let mut local = 0;
        for line in ddl.lines().filter(|line| line.contains("ENGINE = ")) {
            if line.contains("ENGINE = MergeTree") {
                local += 1;
                continue;
            }
            assert!(
                line.contains("ENGINE = Replicated") || line.contains("ENGINE = Distributed"),
                "{line}"
            );
        }
        assert_eq!(local, 2, "the two staging tables");
    }
    Ok(())
}
