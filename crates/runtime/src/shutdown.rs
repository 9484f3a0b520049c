//! The shutdown signal: SIGTERM or Ctrl-C, as a future every loop can await.

use tokio::sync::watch;

/// A cloneable handle that resolves once shutdown was asked for.
#[derive(Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// The trigger half, for tests and for the signal listener.
pub struct Trigger(watch::Sender<bool>);

impl Trigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

pub fn channel() -> (Trigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (Trigger(sender), Shutdown { receiver })
}

impl Shutdown {
    pub fn is_requested(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Resolves when shutdown is requested (or the trigger is dropped).
    pub async fn requested(mut self) {
        let _ = self.receiver.wait_for(|requested| *requested).await;
    }
}

/// Fires `trigger` on SIGTERM or SIGINT.
pub fn on_signals(trigger: Trigger) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        trigger.fire();
    });
}
