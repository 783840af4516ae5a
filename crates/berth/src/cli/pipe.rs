//! A closed pipe on stdout or stderr (`berth info | head -1`) ends berth
//! the way it ends the docker CLI: killed by SIGPIPE (the shell's 141),
//! silently. Go programs die so when a write to fd 1 or 2 fails with EPIPE
//! while a write to any other pipe only returns the error; Rust ignores
//! SIGPIPE everywhere, so `println!` panics and `write_all` returns an
//! error instead. Both are caught here, and only when fd 1 or 2 really is
//! a pipe (or socket) nobody reads any more: a broken pipe to a child
//! process or a socket stays an error the user sees.

use std::os::fd::BorrowedFd;

/// Install the panic hook that turns `println!`'s "failed printing to
/// stdout: Broken pipe" into Docker's quiet SIGPIPE death (every command,
/// every thread).
pub fn install() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.starts_with("failed printing to std") && output_closed() {
            die();
        }
        previous(info);
    }));
}

/// Is `e` (or its cause) a broken pipe, with stdout or stderr closed?
pub fn closed_output_error(e: &anyhow::Error) -> bool {
    let broken = |io: &std::io::Error| io.kind() == std::io::ErrorKind::BrokenPipe;
    let in_chain = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(broken)
            || c.downcast_ref::<berth_engine::EngineError>()
                .and_then(|x| x.downcast_ref::<std::io::Error>())
                .is_some_and(broken)
    });
    in_chain && output_closed()
}

/// Fd 1 or 2 is a pipe or socket whose reading end is gone.
pub fn output_closed() -> bool {
    [1, 2].into_iter().any(|fd| {
        // SAFETY: fds 1 and 2 stay open for the life of the process; the
        // borrow is used only for the poll below.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let mut p = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::OUT)];
        let now = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
        matches!(rustix::event::poll(&mut p, Some(&now)), Ok(1))
            && p[0].revents().intersects(rustix::event::PollFlags::ERR)
    })
}

/// End as a Go program does on EPIPE at fd 1 or 2: killed by SIGPIPE.
pub fn die() -> ! {
    // SAFETY: resetting SIGPIPE to its default action and raising it are
    // async-signal-safe libc calls without pointers; the process ends here.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    // Not reached: SIGPIPE's default action ends the process.
    std::process::exit(128 + libc::SIGPIPE)
}

/// Write `text` to stdout; a closed stdout ends berth as above, any other
/// failure is ignored (as `print!` after the output is gone).
pub fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let r = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    if r.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) && output_closed() {
        die();
    }
}
