//! The training progress bar every trainer shows: steps done, speed, time left, and the
//! running loss and learning rate. indicatif draws it only on a terminal, so logs and tests see
//! nothing of it.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `total` optimizer steps, starting at `done` (a resumed run).
pub(crate) fn training_bar(total: usize, done: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} steps {per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix("training");
    bar.set_position(done as u64);
    bar
}

/// Advances the bar by one step and shows the running loss and the learning rate.
pub(crate) fn step(bar: &ProgressBar, loss: f64, learning_rate: f64) {
    bar.inc(1);
    bar.set_message(format!("loss {loss:.4} lr {learning_rate:.2e}"));
}
