//! `berth-monitor __monitor DIR`: the per-container monitor of a detached
//! container, as a small program of its own. It does exactly what
//! `berth __monitor DIR` does (`berth_engine::monitor`): supervise the
//! container (berth-runtime's monitor) and, for `--rm`, remove it through
//! the engine library once it is done. No CLI parser or logger is
//! initialised, and nothing of the engine is touched before the container
//! is done, so an idle monitor's resident memory is that of the runtime's
//! wait loop (≈ conmon's). The engine starts it when it sits beside the
//! executable that starts the container, and falls back to that
//! executable's `__monitor` otherwise.

fn main() {
    let mut args = std::env::args_os().skip(1);
    let code = match (args.next(), args.next(), args.next()) {
        (Some(verb), Some(dir), None) if verb == "__monitor" => {
            berth_engine::monitor::detached_monitor_main(std::path::Path::new(&dir))
        }
        _ => {
            eprintln!("usage: berth-monitor __monitor CONTAINER_DIR (started by berth, not by hand)");
            125
        }
    };
    std::process::exit(code);
}
