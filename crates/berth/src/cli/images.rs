//! Image commands: import, load, save, images, image inspect, history, tag,
//! rmi, image prune. Parse, call the engine, print as Docker prints.

use std::collections::HashMap;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};

use super::format::{human_size, human_size_4, since, Format};
use berth_engine::image_archive::SaveFormat;
use berth_engine::images::{ListFilter, Removal};
use berth_engine::import::ImportOptions;
use berth_engine::progress::{Event, Progress};
use berth_engine::Engine;

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// List images
    Images(ImagesArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum ImageGroup {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Display detailed information on one or more images
    Inspect(ImageInspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive
    Save(SaveArgs),
    /// Create an image from BASE's layers and each PART's, shared, not copied
    #[command(visible_alias = "merge")]
    Compose(super::image_merge::ImageComposeArgs),
    /// Download an image from a registry
    Pull(super::registry::PullArgs),
    /// Upload an image to a registry
    Push(super::registry::PushArgs),
    /// Build an image from a Dockerfile
    Build(super::build::BuildArgs),
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// A file, a URL, or - for STDIN
    #[arg(value_name = "file|URL|-")]
    pub source: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change")]
    pub changes: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
    /// Load only the given platform of a multi-platform archive
    #[arg(long, value_name = "os/arch[/variant]")]
    pub platform: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// docker-archive (default), oci-archive or oci-dir
    #[arg(long, default_value = "docker-archive")]
    pub format: String,
    /// Save only the given platform of a multi-platform image
    #[arg(long, value_name = "os/arch[/variant]")]
    pub platform: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ImagesArgs {
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub repository: Option<String>,
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided (dangling=, reference=, label=, before=, since=)
    #[arg(short, long = "filter")]
    pub filters: Vec<String>,
    /// Format output using a Go template, "table", or "json"
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ImageInspectArgs {
    #[arg(short, long)]
    pub format: Option<String>,
    /// Inspect the given platform of a multi-platform image
    #[arg(long, value_name = "os/arch[/variant]")]
    pub platform: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub human: bool,
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long)]
    pub format: Option<String>,
    /// Show the history of the given platform of a multi-platform image
    #[arg(long, value_name = "os/arch[/variant]")]
    pub platform: Option<String>,
    pub image: String,
}

#[derive(clap::Args, Debug)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

#[derive(clap::Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    /// Remove only the given platform of a multi-platform image
    #[arg(long, value_name = "os/arch[/variant]")]
    pub platform: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    #[arg(long = "filter")]
    pub filters: Vec<String>,
}

pub fn dispatch(engine: &Engine, cmd: ImageCommand) -> Result<i32> {
    match cmd {
        ImageCommand::Import(a) => import(engine, a),
        ImageCommand::Load(a) => load(engine, a),
        ImageCommand::Save(a) => save(engine, a),
        ImageCommand::Images(a) => images(engine, a),
        ImageCommand::History(a) => history(engine, a),
        ImageCommand::Tag(a) => tag(engine, a),
        ImageCommand::Rmi(a) => rmi(engine, a),
    }
}

pub fn dispatch_group(engine: &Engine, cmd: ImageGroup) -> Result<i32> {
    match cmd {
        ImageGroup::Ls(a) => images(engine, a),
        ImageGroup::Inspect(a) => image_inspect(engine, a),
        ImageGroup::History(a) => history(engine, a),
        ImageGroup::Tag(a) => tag(engine, a),
        ImageGroup::Rm(a) => rmi(engine, a),
        ImageGroup::Prune(a) => prune(engine, a),
        ImageGroup::Import(a) => import(engine, a),
        ImageGroup::Load(a) => load(engine, a),
        ImageGroup::Save(a) => save(engine, a),
        ImageGroup::Compose(a) => super::image_merge::run(engine, a),
        ImageGroup::Pull(_) | ImageGroup::Push(_) | ImageGroup::Build(_) => {
            unreachable!("`image pull/push/build` are dispatched as `pull/push/build`")
        }
    }
}

fn import(engine: &Engine, a: ImportArgs) -> Result<i32> {
    let opts = ImportOptions {
        reference: a.reference.clone(),
        changes: a.changes.clone(),
        message: a.message.clone(),
        platform: a.platform.clone(),
        // The docker CLI sends a file as the request body, which its daemon
        // records as `-`: the image's history says what Docker's says.
        source_name: if a.source.starts_with("http://") || a.source.starts_with("https://") {
            a.source.clone()
        } else {
            "-".to_string()
        },
    };
    let id = if a.source == "-" {
        engine.import(io::stdin().lock(), &opts)?
    } else if a.source.starts_with("http://") || a.source.starts_with("https://") {
        engine.import_url(&a.source, &opts)?
    } else {
        let f = std::fs::File::open(&a.source).map_err(|e| go_open_error(&a.source, &e))?;
        engine.import(io::BufReader::with_capacity(1 << 20, f), &opts)?
    };
    println!("{id}");
    Ok(0)
}

fn load(engine: &Engine, a: LoadArgs) -> Result<i32> {
    // Docker's lines, from the engine's events, as each image arrives
    // (`-q` quiets only the progress, which berth's load does not draw).
    let progress = Progress::new(|e| {
        if let Event::Image { id, name } = e {
            match name {
                Some(n) => println!("Loaded image: {n}"),
                None => println!("Loaded image ID: {id}"),
            }
        }
    });
    match &a.input {
        Some(p) => {
            let f = std::fs::File::open(p).map_err(|e| go_open_error(&p.display().to_string(), &e))?;
            engine.load_platform(f, a.platform.as_deref(), &progress)?;
        }
        None => {
            if io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty: use -i FILE or pipe an archive in");
            }
            engine.load_platform(io::stdin().lock(), a.platform.as_deref(), &progress)?;
        }
    }
    Ok(0)
}

/// A missing image named without a tag reads as Docker's daemon says it:
/// `No such image: nosuch:latest` (an ID or a digest stays as given).
fn image_not_found(word: &str, e: impl Into<anyhow::Error>) -> anyhow::Error {
    let e = e.into();
    let last = word.rsplit('/').next().unwrap_or(word);
    let hex_id = word.starts_with("sha256:") || (word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit()));
    if super::is_not_found(&e) && !last.contains(':') && !word.contains('@') && !hex_id {
        return berth_engine::EngineError::not_found(format!("No such image: {word}:latest")).into();
    }
    e
}

/// A file that cannot be opened, in the docker CLI's (Go's) words:
/// `open /x: no such file or directory`.
fn go_open_error(path: &str, e: &io::Error) -> anyhow::Error {
    let why = match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let t = e.to_string();
            t.split(" (os error").next().unwrap_or(&t).to_lowercase()
        }
    };
    anyhow::anyhow!("open {path}: {why}")
}

fn save(engine: &Engine, a: SaveArgs) -> Result<i32> {
    let format: SaveFormat = a.format.parse()?;
    if format == SaveFormat::OciDir {
        let dir = a.output.as_ref().context("--format oci-dir needs -o DIR")?;
        engine.save_oci_dir_platform(&a.images, a.platform.as_deref(), dir)?;
        return Ok(0);
    }
    match &a.output {
        Some(p) => {
            // Write beside the target and rename: a failed save leaves no half file.
            let tmp = p.with_file_name(format!(
                ".{}.berth-tmp",
                p.file_name()
                    .map(|f| f.to_string_lossy().to_string())
                    .unwrap_or_default()
            ));
            let f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            let res = engine.save_platform(
                &a.images,
                a.platform.as_deref(),
                format,
                io::BufWriter::with_capacity(1 << 20, &f),
            );
            if let Err(e) = res {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
            f.sync_all()?;
            std::fs::rename(&tmp, p).with_context(|| format!("writing {}", p.display()))?;
        }
        None => {
            if io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            engine.save_platform(
                &a.images,
                a.platform.as_deref(),
                format,
                io::BufWriter::new(io::stdout().lock()),
            )?;
        }
    }
    Ok(0)
}

fn parse_filters(filters: &[String]) -> Result<ListFilter> {
    let mut f = ListFilter::default();
    for item in filters {
        let (k, v) = item
            .split_once('=')
            .with_context(|| format!("bad format of filter {item:?} (expected name=value)"))?;
        match k {
            "dangling" => {
                f.dangling = Some(match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => bail!("invalid filter 'dangling={v}': use true or false"),
                })
            }
            "reference" => f.references.push(v.to_string()),
            "label" => f.labels.push(v.to_string()),
            "before" => f.before = Some(v.to_string()),
            "since" => f.since = Some(v.to_string()),
            // Applied to the rows (see `images`).
            "until" => {}
            other => bail!("Invalid filter '{other}'"),
        }
    }
    Ok(f)
}

fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.trim_start_matches("sha256:").chars().take(12).collect()
    }
}

fn images(engine: &Engine, a: ImagesArgs) -> Result<i32> {
    let mut filter = parse_filters(&a.filters)?;
    filter.all = a.all;
    // `images 'my*'`: a pattern is a reference filter, as Docker makes the
    // operand one.
    match a.repository.clone() {
        Some(r) if r.contains(['*', '?', '[']) => filter.references.push(r),
        r => filter.repository = r,
    }
    filter.platforms = a
        .format
        .as_deref()
        .is_some_and(|f| f.contains("Platform") || f == "json");
    let mut rows = engine.list_images(&filter)?;
    // `until=`: created before that time (a timestamp, a date or a duration ago).
    for f in &a.filters {
        if let Some(v) = f.strip_prefix("until=") {
            let t = berth_engine::containers::prune::parse_time(v)?;
            rows.retain(|r| chrono::DateTime::parse_from_rfc3339(&r.created).is_ok_and(|c| c < t));
        }
    }
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            if seen.insert(r.id.clone()) {
                println!("{}", short_id(r.id.as_str(), a.no_trunc));
            }
        }
        return Ok(0);
    }
    let default = if a.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    let spec = match a.format.as_deref() {
        None | Some("") | Some("table") => default.to_string(),
        Some(s) => s.to_string(),
    };
    let fmt = Format::parse(Some(&spec))?;
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "Containers": if r.containers > 0 { r.containers.to_string() } else { "N/A".into() },
                "Platform": r.platform,
                "CreatedAt": super::format::go_time(&r.created),
                "CreatedSince": since(&r.created),
                "Digest": r.digest,
                "ID": short_id(r.id.as_str(), a.no_trunc),
                "Repository": r.repository,
                "SharedSize": "N/A",
                "Size": human_size(r.size),
                "Tag": r.tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(r.size),
            })
        })
        .collect();
    let headers: HashMap<&str, &str> = [
        ("ID", "IMAGE ID"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("Size", "SIZE"),
        ("Containers", "CONTAINERS"),
        ("Platform", "PLATFORM"),
        ("VirtualSize", "VIRTUAL SIZE"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
    ]
    .into_iter()
    .collect();
    fmt.print_items(&items, &headers)?;
    Ok(0)
}

/// Print inspect results: a JSON array (Docker's indent), or one template line each.
pub fn print_inspect(fmt: &Format, values: &[Value]) -> Result<()> {
    if fmt.is_default() {
        io::stdout().write_all(super::format::inspect_json(values)?.as_bytes())?;
    } else {
        let mut out = String::new();
        for v in values {
            match fmt.render_inspect(v) {
                Ok(s) => out.push_str(&s),
                Err(e) => {
                    // As Docker's inspector flushes: what came before, or
                    // an empty line when nothing did.
                    if out.is_empty() {
                        out.push('\n');
                    }
                    io::stdout().write_all(out.as_bytes())?;
                    return Err(e);
                }
            }
            out.push('\n');
        }
        io::stdout().write_all(out.as_bytes())?;
    }
    Ok(())
}

fn image_inspect(engine: &Engine, a: ImageInspectArgs) -> Result<i32> {
    let fmt = Format::parse_inspect(a.format.as_deref())?;
    let mut values = Vec::new();
    let mut failed = None;
    for i in &a.images {
        match engine.image_inspect_platform(i, a.platform.as_deref()) {
            Ok(v) => values.push(v),
            Err(e) => {
                failed = Some(image_not_found(i, e));
            }
        }
    }
    print_inspect(&fmt, &values)?;
    match failed {
        Some(e) => {
            eprintln!("{}", super::error_text(&e));
            Ok(1)
        }
        None => Ok(0),
    }
}

fn history(engine: &Engine, a: HistoryArgs) -> Result<i32> {
    let rows = engine
        .history_platform(&a.image, a.platform.as_deref())
        .map_err(|e| image_not_found(&a.image, e))?;
    if a.quiet {
        for r in &rows {
            println!("{}", short_id(r["ID"].as_str().unwrap_or(""), a.no_trunc));
        }
        return Ok(0);
    }
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            let id = r["ID"].as_str().unwrap_or("");
            let created = r["Created"].as_str().unwrap_or("");
            let mut by = r["CreatedBy"].as_str().unwrap_or("").to_string();
            if !a.no_trunc && by.chars().count() > 45 {
                by = by.chars().take(44).collect::<String>() + "…";
            }
            let size = r["Size"].as_u64().unwrap_or(0);
            json!({
                "ID": if id == "<missing>" { id.to_string() } else { short_id(id, a.no_trunc) },
                "CreatedSince": if a.human { since(created) } else { super::format::rfc3339_seconds(created) },
                "CreatedAt": super::format::rfc3339_seconds(created),
                "CreatedBy": by,
                "Size": if a.human { human_size(size) } else { size.to_string() },
                "Comment": r["Comment"],
            })
        })
        .collect();
    let spec = a
        .format
        .clone()
        .unwrap_or_else(|| "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".into());
    let headers: HashMap<&str, &str> = [
        ("ID", "IMAGE"),
        // Without -H the column is the time itself, and says so (Docker's).
        ("CreatedSince", if a.human { "CREATED" } else { "CREATED AT" }),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ]
    .into_iter()
    .collect();
    Format::parse(Some(&spec))?.print_items(&items, &headers)?;
    Ok(0)
}

fn tag(engine: &Engine, a: TagArgs) -> Result<i32> {
    // The docker CLI checks the new name before asking: its words.
    if let Err(e) = berth_store::Reference::parse(&a.target) {
        bail!(
            "Error parsing reference: {:?} is not a valid repository/tag: {e}",
            a.target
        );
    }
    engine
        .tag(&a.source, &a.target)
        .map_err(|e| image_not_found(&a.source, e))?;
    Ok(0)
}

fn rmi(engine: &Engine, a: RmiArgs) -> Result<i32> {
    let mut code = 0;
    for i in &a.images {
        let res = match a.platform.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => engine.remove_image_platform(i, p, a.force),
            None => engine.remove_image(i, a.force, !a.no_prune),
        };
        match res {
            Ok(out) => print_removals(&out),
            Err(e) => {
                // `rmi -f` of a missing image says so but is no failure (Docker's).
                let e = image_not_found(i, e);
                eprintln!("{}", super::error_text(&e));
                if !(a.force && super::is_not_found(&e)) {
                    code = 1;
                }
            }
        }
    }
    Ok(code)
}

fn print_removals(out: &[Removal]) {
    for r in out {
        let (what, id) = r.told();
        println!("{what}: {id}");
    }
}

/// Docker's "Are you sure?" prompt; false when stdin says no or is closed.
pub fn confirm(warning: &str) -> Result<bool> {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    io::stdout().flush()?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

fn prune(engine: &Engine, a: PruneArgs) -> Result<i32> {
    let mut labels = Vec::new();
    for f in &a.filters {
        match f.split_once('=') {
            Some(("label", v)) => labels.push(v.to_string()),
            _ => bail!("invalid filter {f:?}: image prune takes label=KEY[=VALUE]"),
        }
    }
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning)? {
        return Ok(0);
    }
    let (removed, freed) = engine.prune_images(a.all, &labels)?;
    print_pruned_images(&removed);
    println!("Total reclaimed space: {}", human_size_4(freed));
    Ok(0)
}

/// The `Deleted Images:` section of `image prune` and `system prune`
/// (nothing when nothing went), in the docker CLI's lower case.
pub(super) fn print_pruned_images(removed: &[Removal]) {
    if removed.is_empty() {
        return;
    }
    println!("Deleted Images:");
    for r in removed {
        let (what, id) = r.told();
        println!("{}: {id}", what.to_lowercase());
    }
    println!();
}
