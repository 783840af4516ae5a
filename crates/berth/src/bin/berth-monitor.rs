//! `berth-monitor __monitor DIR`: the per-container monitor of a detached
//! container, as a small program of its own. It does exactly what
//! `berth __monitor DIR` does (see `berth_runtime::monitor`), but lives for
//! the container's whole life, so it carries only the runtime crate: no
//! CLI parser, logger, database or HTTP stack is mapped or initialised
//! (resident memory ≈ conmon's rather than the whole engine's). The engine
//! starts it when it sits beside the `berth` executable and falls back to
//! `berth __monitor` otherwise.

fn main() {
    let mut args = std::env::args_os().skip(1);
    let code = match (args.next(), args.next(), args.next()) {
        (Some(verb), Some(dir), None) if verb == "__monitor" => {
            berth_runtime::monitor::detached_monitor_main(std::path::Path::new(&dir))
        }
        _ => {
            eprintln!("usage: berth-monitor __monitor CONTAINER_DIR (started by berth, not by hand)");
            125
        }
    };
    std::process::exit(code);
}
