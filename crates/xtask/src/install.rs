//! Installs what the local stack needs, once per machine: Debian packages
//! through apt, and the Tansu broker through `cargo install` into a tools folder
//! outside the work tree so every checkout (and CI) reuses one build.

use anyhow::{bail, Context, Result};
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Tansu release we build and test against; bump deliberately.
pub const TANSU_VERSION: &str = "0.6.0";

/// Debian packages the stack or the tests use, with the binary that shows each is there.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("clickhouse-server", "/usr/sbin/clickhouse-server"),
    ("clickhouse-client", "/usr/bin/clickhouse-client"),
    // Alert-rule tests (promtool) and the scrape test.
    ("prometheus", "/usr/bin/promtool"),
    // Committee packs: PDF rendering, and the browser the accessibility test drives.
    ("chromium", "/usr/bin/chromium"),
    // Reading packs' PDFs back in tests (pdftotext, pdfinfo).
    ("poppler-utils", "/usr/bin/pdftotext"),
    // API load tests.
    ("wrk", "/usr/bin/wrk"),
    // Secured connections: the TLS proxy in front of the broker, test
    // certificates, and the client of the API's HTTPS listener.
    ("socat", "/usr/bin/socat"),
    ("openssl", "/usr/bin/openssl"),
    ("curl", "/usr/bin/curl"),
];

/// Where machine-wide tools and caches live: `$CHANNELSHIFT_TOOLS`, else
/// `~/.cache/channelshift`.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = env::var_os("CHANNELSHIFT_TOOLS") {
        return PathBuf::from(dir);
    }
    let home = env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache").join("channelshift")
}

pub fn tansu_binary() -> PathBuf {
    tools_dir().join("tools").join("bin").join("tansu")
}

pub fn ensure_all() -> Result<()> {
    ensure_debian_packages()?;
    ensure_tansu()?;
    ensure_browser_checks()?;
    ensure_cargo_fuzz()?;
    crate::current_engine::python()?;
    Ok(())
}

/// A virtual environment in the tools folder holding `requirements` (pip's
/// lines), made once per machine and again when the requirements change.
/// Returns its interpreter.
pub fn python_venv(name: &str, requirements: &[&str]) -> Result<PathBuf> {
    let venv = tools_dir().join(name);
    let python = venv.join("bin").join("python3");
    let marker = venv.join("channelshift-requirements.txt");
    let wanted = requirements.join("\n");
    if python.exists() && std::fs::read_to_string(&marker).is_ok_and(|have| have == wanted) {
        return Ok(python);
    }
    println!(
        "preparing the Python environment {} (once per machine): {}",
        venv.display(),
        requirements.join(" ")
    );
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("python3 -m venv")?;
    if !created.success() {
        bail!("creating {} failed", venv.display());
    }
    let installed = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet"])
        .args(requirements)
        .status()
        .context("pip install")?;
    if !installed.success() {
        bail!("pip install {} failed", requirements.join(" "));
    }
    std::fs::write(&marker, wanted)?;
    Ok(python)
}

/// `cargo fuzz`, for the bounded fuzzing step of `cargo xtask test`.
fn ensure_cargo_fuzz() -> Result<()> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let present = Command::new(&cargo)
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if present {
        return Ok(());
    }
    println!("installing cargo-fuzz (once per machine; a few minutes)");
    let status = Command::new(&cargo)
        .args(["install", "cargo-fuzz", "--locked"])
        // Its own target dir, like Tansu's: keep the project's build warm.
        .env("CARGO_TARGET_DIR", tools_dir().join("cargo-fuzz-target"))
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !status.success() {
        bail!("cargo install cargo-fuzz failed ({status})");
    }
    Ok(())
}

/// The npm packages the accessibility test drives Chromium with
/// (`tests/browser`: axe-core and playwright-core, pinned by its lock file).
fn ensure_browser_checks() -> Result<()> {
    let dir = crate::stack::workspace_root().join("tests").join("browser");
    if dir.join("node_modules").join("axe-core").exists()
        && dir.join("node_modules").join("playwright-core").exists()
    {
        return Ok(());
    }
    println!(
        "installing the browser checks' npm packages into {}",
        dir.display()
    );
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .context("running npm ci (Node.js and npm must be installed)")?;
    if !status.success() {
        bail!("npm ci in {} failed ({status})", dir.display());
    }
    Ok(())
}

fn ensure_debian_packages() -> Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .filter(|(_, binary)| !Path::new(binary).exists())
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("installing Debian packages: {}", missing.join(" "));
    let sudo = !is_root();
    run_privileged(sudo, &["apt-get", "update", "-q"])?;
    let mut install = vec!["apt-get", "install", "-y", "-q", "--no-install-recommends"];
    install.extend(&missing);
    run_privileged(sudo, &install)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run_privileged(sudo: bool, args: &[&str]) -> Result<()> {
    let mut command = if sudo {
        let mut command = Command::new("sudo");
        command.args(args);
        command
    } else {
        let mut command = Command::new(args[0]);
        command.args(&args[1..]);
        command
    };
    command.env("DEBIAN_FRONTEND", "noninteractive");
    let status = command
        .status()
        .with_context(|| format!("running {}", args.join(" ")))?;
    if !status.success() {
        bail!("`{}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn ensure_tansu() -> Result<()> {
    let binary = tansu_binary();
    if binary.exists() {
        return Ok(());
    }
    let root = tools_dir().join("tools");
    let target = tools_dir().join("tansu-target");
    println!(
        "building the Tansu broker {TANSU_VERSION} into {} (once per machine; about 12 minutes on 2 cores)",
        root.display()
    );
    let status = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "tansu", "--locked", "--version", TANSU_VERSION])
        .args(["--features", "libsql,dynostore", "--root"])
        .arg(&root)
        // Its own target dir: the broker's build must not churn the project's.
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .context("running cargo install tansu")?;
    if !status.success() || !binary.exists() {
        bail!("cargo install tansu failed ({status})");
    }
    Ok(())
}
