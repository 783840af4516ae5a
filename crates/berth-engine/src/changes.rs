//! `--change` for import and commit: each value is one Dockerfile
//! instruction, parsed by the Dockerfile front end and applied with the
//! builder's own metadata rules, so `CMD ["sh"]` means here what it means in
//! a Dockerfile.

use crate::error::{bail, Result};
use berth_build::dockerfile::{expand_instruction, parse};
use berth_build::metadata::{apply_metadata, MetaState};
use berth_store::ImageConfig;

const ALLOWED: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
    "HEALTHCHECK",
    "SHELL",
];

/// Applies Dockerfile instructions (`CMD ["sh"]`, `ENV A=b`, `EXPOSE 80` …)
/// to an image config, as `import --change` and `commit --change` do.
pub fn apply_changes(img: &mut ImageConfig, changes: &[String]) -> Result<()> {
    let mut state = MetaState::default();
    for change in changes {
        let df = match parse(&format!("FROM scratch\n{change}\n"), "--change") {
            Ok(df) => df,
            Err(e) => bail!("invalid --change {change:?}: {}", e.message),
        };
        let Some(ins) = df.stages.first().and_then(|s| s.instructions.first()) else {
            bail!("invalid --change {change:?}: no instruction");
        };
        let name = ins.kind.name();
        if !ALLOWED.contains(&name) {
            bail!(
                "{name} is not a valid change command: use one of {}",
                ALLOWED.join(", ")
            );
        }
        let env = img.config.env.clone().unwrap_or_default();
        let vars = move |k: &str| berth_build::metadata::env_get(&env, k).map(String::from);
        let ins = expand_instruction(ins, &vars, '\\')
            .map_err(|e| anyhow::anyhow!("invalid --change {change:?}: {}", e.message))?;
        apply_metadata(&ins.kind, &ins.original, img, &mut state);
    }
    Ok(())
}
