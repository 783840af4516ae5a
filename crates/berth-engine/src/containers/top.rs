//! `top`: a running container's processes as a table, the way Docker's
//! daemon makes it: the host's `ps` with the caller's options (`-ef` by
//! default) asked for the container's processes only, its header kept and
//! its lines split in columns. Every front (the CLI's `top`, compose's
//! `top`, the API's `/containers/{id}/top`) shows this one table.

use std::collections::HashSet;
use std::process::Command;

use crate::error::{bail, Result};
use crate::{Engine, EngineError};

/// `ps`'s titles and one row of cells per process (the last cell keeps
/// its spaces: the command line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopTable {
    /// `ps`'s header, one title per column.
    pub titles: Vec<String>,
    /// The container's processes, one cell per column.
    pub processes: Vec<Vec<String>>,
}

impl Engine {
    /// `top [ps OPTIONS]` of a running container. `ps_args` are `ps`'s
    /// options as one string (Docker's `ps_args`; empty: `-ef`).
    pub fn container_top_table(&self, word: &str, ps_args: &str) -> Result<TopTable> {
        check_ps_args(ps_args)?;
        let (_, procs) = self.container_top(word)?;
        let args: Vec<&str> = match ps_args.split_whitespace().collect::<Vec<_>>() {
            a if a.is_empty() => vec!["-ef"],
            a => a,
        };
        let pids: HashSet<i32> = procs.iter().map(|p| p.pid).collect();
        // The container's processes only (`-q`, procps); a `ps` that does
        // not know `-q` lists everything, and the lines are picked by PID.
        let only: String = procs.iter().map(|p| p.pid.to_string()).collect::<Vec<_>>().join(",");
        let run = |extra: &[&str]| Command::new("ps").args(&args).args(extra).output();
        let out = match run(&["-q", &only]) {
            Ok(o) if o.status.success() => Ok(o),
            Ok(_) => run(&[]),
            Err(e) => Err(e),
        };
        match out {
            Ok(o) if o.status.success() => parse_ps(&String::from_utf8_lossy(&o.stdout), &pids),
            Ok(o) => Err(EngineError::new(
                crate::ErrorKind::Other,
                format!(
                    "Error running ps: exit status {}: {}",
                    o.status.code().unwrap_or(-1),
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            )),
            // No `ps` on this host: `-ef`'s columns from /proc.
            Err(_) => Ok(TopTable {
                titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
                    .map(String::from)
                    .to_vec(),
                processes: procs
                    .into_iter()
                    .map(|p| {
                        let t = p.cpu_seconds;
                        vec![
                            if p.uid == 0 { "root".into() } else { p.uid.to_string() },
                            p.pid.to_string(),
                            p.ppid.to_string(),
                            "0".into(),
                            "-".into(),
                            "?".into(),
                            format!("{:02}:{:02}:{:02}", t / 3600, (t % 3600) / 60, t % 60),
                            p.cmd,
                        ]
                    })
                    .collect(),
            }),
        }
    }
}

/// Docker's check: no `KEY=PID…` output column renamed to hide the PID
/// column from the parse (`-o pid=PID` is fine).
fn check_ps_args(ps_args: &str) -> Result<()> {
    for word in ps_args.split([' ', ',']) {
        if let Some((k, v)) = word.split_once('=') {
            let v = v.trim();
            if v.starts_with("PID") && k != "pid" {
                return Err(EngineError::invalid(format!("specifying \"{k}={v}\" is not allowed")));
            }
        }
    }
    Ok(())
}

/// `ps` output → its titles and the lines of `pids`, split in columns (the
/// last column keeps its spaces), as Docker's daemon reads it.
fn parse_ps(text: &str, pids: &HashSet<i32>) -> Result<TopTable> {
    let mut lines = text.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let Some(pid_col) = titles.iter().position(|t| t == "PID") else {
        bail!("Couldn't find PID field in ps output");
    };
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !pids.contains(&pid) || fields.len() < titles.len() {
            continue;
        }
        let last = titles.len() - 1;
        let mut row: Vec<String> = fields[..last].iter().map(|s| s.to_string()).collect();
        row.push(fields[last..].join(" "));
        processes.push(row);
    }
    Ok(TopTable { titles, processes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_lines_of_the_container_split_in_columns() {
        let text = "UID  PID PPID C STIME TTY TIME CMD\n\
                    root   7    1 0 10:00 ?   00:00:00 sleep 1000 now\n\
                    root   9    1 0 10:00 ?   00:00:00 other\n";
        let t = parse_ps(text, &HashSet::from([7])).unwrap();
        assert_eq!(t.titles.len(), 8);
        assert_eq!(
            t.processes,
            vec![vec!["root", "7", "1", "0", "10:00", "?", "00:00:00", "sleep 1000 now"]]
        );
        assert!(parse_ps("USER COMMAND\n", &HashSet::new()).is_err());
    }

    #[test]
    fn a_renamed_pid_column_is_refused() {
        assert!(check_ps_args("-o pid,comm").is_ok());
        assert!(check_ps_args("-o pid=PID,comm").is_ok());
        assert!(check_ps_args("-o user=PID").is_err());
    }
}
