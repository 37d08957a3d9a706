//! The signals that end a sync (SIGTERM, SIGINT, SIGHUP), heard on a thread of their own. The
//! write loop runs on one thread and can block in a write to a stdout nobody reads; heard there,
//! a signal would wait for the write. Heard here, it is known at once: the loop starts no request
//! after it, and if the loop cannot finish within the grace (stdout still blocked), the process
//! exits anyway.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;

/// A signal that ends a sync, and the exit code it means (128 + its number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caught {
    pub name: &'static str,
    pub exit_code: u8,
}

const ENDINGS: [(SignalKind, Caught); 3] = [
    (
        SignalKind::terminate(),
        Caught {
            name: "SIGTERM",
            exit_code: 143,
        },
    ),
    (
        SignalKind::interrupt(),
        Caught {
            name: "SIGINT",
            exit_code: 130,
        },
    ),
    (
        SignalKind::hangup(),
        Caught {
            name: "SIGHUP",
            exit_code: 129,
        },
    ),
];

/// Beyond the grace, how long the loop has to print its last messages before the process exits
/// without them.
const LAST_WORDS: Duration = Duration::from_millis(1500);

/// What the write loop reads: the first signal, once it came.
#[derive(Clone)]
pub struct Signals {
    received: Arc<OnceLock<Caught>>,
    notify: Arc<Notify>,
}

impl Signals {
    /// Starts listening. `grace`: how long in-flight requests may settle after a signal.
    pub fn listen(grace: Duration) -> std::io::Result<Signals> {
        let signals = Signals {
            received: Arc::new(OnceLock::new()),
            notify: Arc::new(Notify::new()),
        };
        let mut streams = Vec::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        {
            let _entered = runtime.enter();
            for (kind, ending) in ENDINGS {
                streams.push((signal(kind)?, ending));
            }
        }
        let heard = signals.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || runtime.block_on(heard.watch(streams, grace)))?;
        Ok(signals)
    }

    /// As if `caught` had come already (or no signal, with `None`): for the write loop's
    /// tests, which cannot send the test process a signal.
    #[cfg(test)]
    pub fn given(caught: Option<Caught>) -> Signals {
        let received = OnceLock::new();
        if let Some(caught) = caught {
            let _ = received.set(caught);
        }
        Signals {
            received: Arc::new(received),
            notify: Arc::new(Notify::new()),
        }
    }

    /// The signal that ended the sync, if one came.
    pub fn received(&self) -> Option<Caught> {
        self.received.get().copied()
    }

    /// Waits for a signal (at once if one already came).
    pub async fn wait(&self) -> Caught {
        loop {
            let notified = self.notify.notified();
            if let Some(ending) = self.received() {
                return ending;
            }
            notified.await;
        }
    }

    async fn watch(self, mut streams: Vec<(tokio::signal::unix::Signal, Caught)>, grace: Duration) {
        let first =
            futures_util::future::select_all(streams.iter_mut().map(|(stream, ending)| {
                Box::pin(async move { stream.recv().await.map(|_| *ending) })
            }))
            .await
            .0;
        let Some(ending) = first else { return };
        let _ = self.received.set(ending);
        self.notify.notify_waiters();
        tokio::time::sleep(grace + LAST_WORDS).await;
        eprintln!(
            "destination-webhook: {} received and the sync could not finish within {:.1}s (stdout blocked?); exiting",
            ending.name,
            (grace + LAST_WORDS).as_secs_f64()
        );
        std::process::exit(i32::from(ending.exit_code));
    }
}
