//! The dependency graph of a project's services: start order as levels
//! (each level's services depend only on earlier levels, so a level starts
//! in parallel), stop order (the reverse), and a selection with its
//! dependencies (`up web` also starts `db`). The loader has already
//! rejected cycles and undefined services.

use std::collections::BTreeSet;

use crate::model::Project;

/// Services grouped into levels in start order; names sorted within a level.
pub fn start_levels(project: &Project) -> Vec<Vec<String>> {
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut levels = Vec::new();
    while placed.len() < project.services.len() {
        let level: Vec<String> = project
            .services
            .iter()
            .filter(|(n, _)| !placed.contains(n.as_str()))
            .filter(|(_, s)| {
                s.depends_on
                    .keys()
                    .all(|d| placed.contains(d.as_str()) || !project.services.contains_key(d))
            })
            .map(|(n, _)| n.clone())
            .collect();
        if level.is_empty() {
            // Only a cycle can stop progress, and the loader refuses cycles.
            break;
        }
        for n in &level {
            placed.insert(project.services.get_key_value(n).expect("present").0);
        }
        levels.push(level);
    }
    levels
}

/// Levels in stop order: dependents first.
pub fn stop_levels(project: &Project) -> Vec<Vec<String>> {
    let mut l = start_levels(project);
    l.reverse();
    l
}

/// `selected` and everything they depend on, transitively.
pub fn with_dependencies(project: &Project, selected: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = selected.to_vec();
    while let Some(n) = todo.pop() {
        if !out.insert(n.clone()) {
            continue;
        }
        if let Some(s) = project.services.get(&n) {
            todo.extend(s.depends_on.keys().cloned());
        }
    }
    out
}
