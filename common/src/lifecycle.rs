//! Process start and stop, shared by the API and the workers.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// `e` and its causes on one line, for a process's last words. Each cause is left out when the
/// message before it already says it (this crate's errors quote their source, and so do
/// sqlx's), which `{:#}` would repeat.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut last = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if last.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
        last = text;
    }
    line
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Repeats `connect` while it fails with an error `unreachable` accepts, waiting 0.25 s at
/// first and up to 5 s between tries, and logs each wait. A process started before its
/// PostgreSQL or Redis (a deployment brought up at once, a restart of the host) then waits for
/// them instead of exiting; any other error (a wrong password, a failed migration) ends the
/// wait at once. Each wait counts in `pacer_dependency_waits_total{dependency=what}`. `None`
/// when a shutdown signal came first.
pub async fn until_reachable<T, E, F, Fut>(
    what: &'static str,
    unreachable: impl Fn(&E) -> bool,
    connect: F,
) -> Option<Result<T, E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times();
    let attempts = connect
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(unreachable)
        .notify(|e, wait| {
            metrics::counter!("pacer_dependency_waits_total", "dependency" => what).increment(1);
            tracing::warn!(error = %e, retry_in = ?wait, "{what} cannot be reached; waiting for it");
        });
    tokio::select! {
        r = attempts => Some(r),
        () = shutdown_signal() => {
            tracing::info!("stopped while waiting for {what}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_line_says_each_cause_once() {
        let e = anyhow::Error::from(crate::error::Error::Invalid(
            "role \"x\" does not exist".into(),
        ))
        .context("PostgreSQL (DATABASE_URL)");
        assert_eq!(
            error_line(&e),
            "PostgreSQL (DATABASE_URL): role \"x\" does not exist"
        );
        let io = std::io::Error::other("refused");
        let e = anyhow::Error::from(crate::error::Error::Redis(io.into())).context("Redis");
        let line = error_line(&e);
        assert_eq!(line.matches("refused").count(), 1, "{line}");
    }
}
