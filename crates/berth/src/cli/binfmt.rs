//! `berth system binfmt [--install [ARCH…] | --uninstall ARCH…]`: which CPU
//! architectures run here, and registering qemu's handlers. Parses, calls
//! the engine's binfmt functions, prints; no policy of its own.

use std::collections::HashMap;

use anyhow::Result;
use serde_json::Value;

use super::format::Format;
use berth_engine::binfmt;

#[derive(clap::Args, Debug)]
pub struct BinfmtArgs {
    /// Register qemu-user-static's handlers (with the F flag, so containers
    /// can use them) for these architectures, or all when none is named; needs root
    #[arg(long, num_args = 0.., value_name = "ARCH", conflicts_with = "uninstall")]
    pub install: Option<Vec<String>>,
    /// Remove the handlers of these architectures; needs root
    #[arg(long, num_args = 1.., value_name = "ARCH")]
    pub uninstall: Option<Vec<String>>,
    /// Format output using a Go template (fields Arch, Status, Handler, Interpreter, Flags), or json
    #[arg(long)]
    pub format: Option<String>,
}

pub fn run(a: BinfmtArgs) -> Result<i32> {
    if let Some(names) = &a.install {
        for line in binfmt::binfmt_install(names)? {
            let by = match (&line.handler, &line.interpreter) {
                (Some(h), Some(i)) => format!(" ({h}: {i})"),
                _ => String::new(),
            };
            println!("{}: {}{by}", line.arch, line.action);
        }
        return Ok(0);
    }
    if let Some(names) = &a.uninstall {
        for name in binfmt::binfmt_uninstall(names)? {
            println!("removed {name}");
        }
        return Ok(0);
    }
    let report = binfmt::binfmt_status()?;
    let spec = a
        .format
        .clone()
        .unwrap_or_else(|| "table {{.Arch}}\t{{.Status}}\t{{.Interpreter}}\t{{.Flags}}".into());
    let fmt = Format::parse(Some(&spec))?;
    let rows: Vec<Value> = report
        .arches
        .iter()
        .map(|s| serde_json::to_value(s).map(|v| if fmt.is_table() { dash_for_null(v) } else { v }))
        .collect::<Result<_, _>>()?;
    let headers: HashMap<&str, &str> = [
        ("Arch", "ARCH"),
        ("Status", "STATUS"),
        ("Handler", "HANDLER"),
        ("Interpreter", "INTERPRETER"),
        ("Flags", "FLAGS"),
    ]
    .into_iter()
    .collect();
    fmt.print_items(&rows, &headers)?;
    if a.format.is_none() {
        if report.mounted_at.is_none() {
            println!(
                "\nbinfmt_misc is not mounted, so no handlers are registered (berth system binfmt --install mounts it)"
            );
        } else if !report.enabled {
            println!("\nbinfmt_misc is switched off as a whole (berth system binfmt --install switches it on)");
        }
        let missing: Vec<&str> = report
            .arches
            .iter()
            .filter(|s| !matches!(s.status.as_str(), "native" | "emulated"))
            .map(|s| s.arch.as_str())
            .collect();
        if !missing.is_empty() {
            println!(
                "\nTo run images of {} here, as root: berth system binfmt --install {}",
                missing.join(", "),
                missing.join(" ")
            );
        }
    }
    Ok(0)
}

/// `-` in the table where an architecture has no handler.
fn dash_for_null(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        for value in o.values_mut() {
            if value.is_null() {
                *value = Value::String("-".into());
            }
        }
    }
    v
}
