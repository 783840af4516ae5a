//! `--userns` of `run`/`create`, and what `berth info` says about user
//! namespaces. The modes and their rules live in `berth_engine::userns`.

use berth_engine::userns::{LayerSharing, UsernsInfo};

/// `--userns` (flattened into `create`'s flags).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct UsernsArgs {
    /// User namespace: host (Docker's: root is host root), auto[:size=N] (as
    /// root: own range of host ids), keep-id or nomap (rootless); default:
    /// berth.toml's `userns`, else host
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,
}

/// `berth info`'s lines.
pub fn print_info(u: &UsernsInfo) {
    println!("User Namespaces:");
    println!(" Default: {}", u.default);
    match &u.pool {
        Ok(p) => println!(" Pool for auto: {}", p.join(", ")),
        Err(e) => println!(" Pool for auto: none ({e})"),
    }
    match &u.layers {
        LayerSharing::IdmappedMounts => {
            println!(" Layers: shared through idmapped mounts (berth makes them; any OCI runtime runs the result)")
        }
        LayerSharing::ChownedCopies { why } => println!(" Layers: a chowned copy per mapping ({why})"),
    }
    println!(" Containers with their own host ids: {}", u.allocated);
}
