//! Two-stage shutdown: the first SIGINT/SIGTERM stops taking work and lets the work in hand
//! finish; the second quits at once (jobs in hand are picked up again after the visibility timeout).

use tokio_util::sync::CancellationToken;

/// Cancels the returned token on the first signal; exits the process on the second.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let signal = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!(
            "shutting down: finishing requests and jobs in hand (signal again to quit now)"
        );
        signal.cancel();
        wait_for_signal().await;
        tracing::warn!(
            "quitting now; jobs in hand will be picked up again after the visibility timeout"
        );
        std::process::exit(130);
    });
    token
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
