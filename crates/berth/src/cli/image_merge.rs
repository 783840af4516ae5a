//! `berth image compose` (alias `merge`): parse, call the engine's
//! `merge_images` / `plan_image_merge`, print. The rules live in
//! `berth_engine::image_merge`.

use std::collections::HashMap;

use anyhow::Result;
use berth_archive::EntryKind;
use berth_engine::image_merge::{ImageMergeRequest, MergePlan};
use berth_engine::Engine;
use serde_json::{json, Value};

use super::format::{human_size, Format};

#[derive(clap::Args, Debug)]
pub struct ImageComposeArgs {
    /// Name and optionally a tag for the new image (name:tag)
    #[arg(short, long = "tag", value_name = "NAME[:TAG]")]
    pub tag: Option<String>,
    /// Apply Dockerfile instruction to the created image (as `import --change`)
    #[arg(short, long = "change")]
    pub changes: Vec<String>,
    /// Only show the layers, the paths more than one parent provides (the
    /// later one wins) and the deletions that would be refused; make nothing
    #[arg(long)]
    pub check: bool,
    /// Squash a part's layers that delete other parents' files into one
    /// layer that only adds files, instead of refusing the part
    #[arg(long)]
    pub flatten_conflicts: bool,
    /// The image whose config and layers come first
    #[arg(value_name = "BASE")]
    pub base: String,
    /// Images whose layers are stacked on BASE, in this order
    #[arg(value_name = "PART", required = true)]
    pub parts: Vec<String>,
}

pub fn run(engine: &Engine, a: ImageComposeArgs) -> Result<i32> {
    let req = ImageMergeRequest {
        base: a.base,
        parts: a.parts,
        tag: a.tag,
        changes: a.changes,
        flatten_conflicts: a.flatten_conflicts,
    };
    if a.check {
        let plan = engine.plan_image_merge(&req)?;
        print_plan(&plan)?;
        let refused = !plan.deletions.is_empty() && !req.flatten_conflicts;
        return Ok(if refused { 1 } else { 0 });
    }
    let merged = engine.merge_images(&req)?;
    let p = &merged.plan;
    for f in &merged.flattened {
        eprintln!(
            "{}: flattened its layers {}-{} into {}; deletions dropped: {}",
            p.parents[f.parent].role(f.parent),
            f.from_index + 1,
            f.from_index + f.layers,
            f.diff_id.short(),
            f.dropped.join(", ")
        );
    }
    match p.overlaps.len() {
        0 => {}
        1 => eprintln!(
            "1 path is provided by more than one parent (the later one wins); see `berth image compose --check`"
        ),
        n => eprintln!(
            "{n} paths are provided by more than one parent (the later one wins); see `berth image compose --check`"
        ),
    }
    println!("{}", merged.id);
    Ok(0)
}

fn kind_word(k: EntryKind) -> &'static str {
    match k {
        EntryKind::Dir { .. } => "directory",
        EntryKind::Symlink => "symlink",
        EntryKind::File => "file",
        EntryKind::Whiteout => "deletion",
    }
}

fn print_plan(plan: &MergePlan) -> Result<()> {
    let rows: Vec<Value> = plan
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({"N": (i + 1).to_string(), "From": format!("{} layer {}", plan.parents[l.parent].role(l.parent), l.index + 1),
                   "Digest": l.diff_id.short(), "Size": human_size(l.content_size)})
        })
        .collect();
    let headers: HashMap<&str, &str> = [
        ("N", "LAYER"),
        ("From", "FROM"),
        ("Digest", "DIFF ID"),
        ("Size", "SIZE"),
    ]
    .into_iter()
    .collect();
    Format::parse(Some("table {{.N}}\t{{.From}}\t{{.Digest}}\t{{.Size}}"))?.print_items(&rows, &headers)?;
    for s in &plan.skipped {
        println!(
            "{} layer {} ({}) is already there from {}: not added again",
            plan.parents[s.parent].role(s.parent),
            s.index + 1,
            s.diff_id.short(),
            plan.parents[s.present_from].role(s.present_from)
        );
    }
    println!(
        "\nPaths more than one parent provides (the last one wins): {}",
        plan.overlaps.len()
    );
    for o in &plan.overlaps {
        let who: Vec<String> = o
            .providers
            .iter()
            .map(|(p, k)| format!("{} ({})", plan.parents[*p].role(*p), kind_word(*k)))
            .collect();
        println!("  {}: {}", o.path, who.join(", "));
    }
    println!("\nDeletions that reach other parents' files: {}", plan.deletions.len());
    for d in &plan.deletions {
        let whose: Vec<String> = d.reaches.iter().map(|p| plan.parents[*p].role(*p)).collect();
        println!(
            "  {}: {} layer {} {} it (removes files of {})",
            d.path,
            plan.parents[d.parent].role(d.parent),
            d.index + 1,
            if d.opaque { "makes opaque" } else { "deletes" },
            whose.join(", ")
        );
    }
    if !plan.env_conflicts.is_empty() {
        println!("\nEnvironment variables the base keeps:");
        for c in &plan.env_conflicts {
            let ignored: Vec<String> = c
                .ignored
                .iter()
                .map(|(p, v)| format!("{} sets {v:?}", plan.parents[*p].role(*p)))
                .collect();
            println!("  {}={:?} ({})", c.name, c.kept, ignored.join("; "));
        }
    }
    Ok(())
}
