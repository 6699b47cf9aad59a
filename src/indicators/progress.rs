//! Progress of a release or an audit, for the operator: a bar with rate and ETA on a terminal
//! (as `import` shows), and the phases with their durations in the log either way, so a long
//! national release is visibly progressing and its record says where the time went.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

/// How long one phase of a release took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhaseDuration {
    pub phase: String,
    pub seconds: f64,
}

/// Phases and their progress; cheap to share between the audit's threads.
pub struct Progress {
    bar: ProgressBar,
    current: Mutex<Option<(String, Instant)>>,
    finished: Mutex<Vec<PhaseDuration>>,
}

impl Progress {
    /// A bar on standard error when it is a terminal; log lines only otherwise.
    pub fn for_terminal() -> Progress {
        use std::io::IsTerminal;
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
                    .expect("template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress::with_bar(bar)
    }

    /// Log lines only (tests, the server, benches).
    pub fn quiet() -> Progress {
        Progress::with_bar(ProgressBar::hidden())
    }

    fn with_bar(bar: ProgressBar) -> Progress {
        Progress {
            bar,
            current: Mutex::new(None),
            finished: Mutex::new(Vec::new()),
        }
    }

    /// Start a phase of `total` steps (0 when unknown), ending the one before.
    pub fn phase(&self, name: &str, total: usize) {
        self.end_phase();
        tracing::info!(phase = name, steps = total, "indicators: phase started");
        self.bar.set_message(name.to_string());
        self.bar.set_length(total as u64);
        self.bar.set_position(0);
        self.bar.reset_eta();
        *self.current.lock().expect("progress lock") = Some((name.to_string(), Instant::now()));
    }

    pub fn advance(&self, steps: usize) {
        self.bar.inc(steps as u64);
    }

    /// End the current phase, logging and recording its duration.
    pub fn end_phase(&self) {
        let Some((phase, started)) = self.current.lock().expect("progress lock").take() else {
            return;
        };
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            phase = phase.as_str(),
            steps = self.bar.position(),
            seconds,
            "indicators: phase done"
        );
        self.finished
            .lock()
            .expect("progress lock")
            .push(PhaseDuration { phase, seconds });
    }

    /// Every finished phase (ending the current one), in order; clears the bar.
    pub fn finish(&self) -> Vec<PhaseDuration> {
        self.end_phase();
        self.bar.finish_and_clear();
        self.finished.lock().expect("progress lock").clone()
    }
}
