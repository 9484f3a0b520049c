//! The README's main job (filled in below).
use anyhow::Result;
pub fn run() -> Result<()> {
    anyhow::bail!("the demo is not written yet")
}
