//! Ctrl-C for long commands, through tokio's signal handling (SIGINT on Unix, the console
//! control handler on Windows), which the CLI already carries for the local server. It
//! replaces the `ctrlc` crate, whose macOS build links libobjc and Foundation through
//! libdispatch's Objective-C blocks: those cannot be linked when cross-building for
//! macOS without Apple's SDK (scripts/pack --all, README: Packaging).

use std::sync::mpsc;

/// Runs `handler` on every Ctrl-C from now on, on a thread of its own; returns once the
/// signal is watched. If it cannot be (no thread, no runtime), Ctrl-C keeps its default:
/// the process ends.
pub fn on_ctrl_c(handler: impl Fn() + Send + 'static) {
    let (ready, watching) = mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("ctrl-c".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                #[cfg(unix)]
                let signals =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
                #[cfg(windows)]
                let signals = tokio::signal::windows::ctrl_c();
                let Ok(mut signals) = signals else {
                    return;
                };
                let _ = ready.send(());
                while signals.recv().await.is_some() {
                    handler();
                }
            });
        });
    if spawned.is_ok() {
        // Err: the thread gave up (the sender is gone), and Ctrl-C keeps its default.
        let _ = watching.recv();
    }
}
