//! The `berth` binary: parse, dispatch, turn the outcome into Docker's exit
//! codes (the container's own, 125 when berth fails).

fn main() {
    let code = berth::cli::main();
    std::process::exit(code);
}
