//! Starting and stopping the stack's processes by PID: we only ever signal a
//! process we recorded, and only after checking it is still the one we started.

use anyhow::{bail, Context, Result};
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Starts `command` in its own process group, detached from our terminal, with
/// stdout and stderr appended to `log`. Returns its PID.
pub fn spawn_detached(mut command: Command, log: &Path) -> Result<u32> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening log {}", log.display()))?;
    let err = out.try_clone()?;
    let child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Own process group: a Ctrl-C in the terminal that ran us does not
        // reach the stack, which is meant to outlive this command.
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    Ok(child.id())
}

/// True while `pid` runs and its command line contains `marker` (the stack's
/// own config path or data folder), so a recycled PID is never mistaken for ours.
pub fn is_ours(pid: u32, marker: &str) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    if is_zombie(pid) {
        return false;
    }
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    cmdline.contains(marker)
}

fn is_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the parenthesised command name, which may itself hold spaces.
            let after = stat.rsplit_once(')')?.1;
            after.split_whitespace().next().map(|state| state == "Z")
        })
        .unwrap_or(false)
}

/// Sends SIGTERM, waits up to `grace` for the process to go, then SIGKILL.
pub fn stop(pid: u32, marker: &str, grace: Duration) -> Result<()> {
    if !is_ours(pid, marker) {
        return Ok(());
    }
    signal(pid, "TERM")?;
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !is_ours(pid, marker) {
            return Ok(());
        }
        sleep(Duration::from_millis(100));
    }
    signal(pid, "KILL")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !is_ours(pid, marker) {
            return Ok(());
        }
        sleep(Duration::from_millis(100));
    }
    bail!("process {pid} did not exit after SIGKILL")
}

fn signal(pid: u32, name: &str) -> Result<()> {
    // `kill` from procps rather than libc: the workspace forbids unsafe code.
    Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .context("running kill")?;
    Ok(())
}

/// Polls `ready` every 100 ms until it answers true or `timeout` passes;
/// fails early if the process we are waiting on has died.
pub fn await_ready(
    what: &str,
    pid: u32,
    log: &Path,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if ready() {
            return Ok(());
        }
        // Our own unreaped child: its PID cannot have been reused, and its
        // command line may briefly read empty while it starts, so only
        // existence is checked here.
        if !is_alive(pid) {
            bail!(
                "{what} exited during start-up; the end of its log ({}):\n{}",
                log.display(),
                tail(log, 20)
            );
        }
        if started.elapsed() > timeout {
            bail!(
                "{what} was not ready after {}s; the end of its log ({}):\n{}",
                timeout.as_secs(),
                log.display(),
                tail(log, 20)
            );
        }
        sleep(Duration::from_millis(100));
    }
}

pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
