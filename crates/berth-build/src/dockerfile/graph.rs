//! The stage graph: which stage a name or index means, which stages a stage
//! depends on (`FROM <stage>`, `COPY --from`, `RUN --mount=from=`), and the
//! order in which a target's stages must be built.
//!
//! Only answers questions about the parsed file; it never builds, pulls or
//! resolves images. A name that is not a stage is an image reference.

use std::collections::BTreeMap;

use super::ast::{Dockerfile, InstructionKind, Stage};
use super::expand::expand;

impl Dockerfile {
    /// A stage by its `AS` name (case-insensitive) or its index.
    pub fn stage_by_name_or_index(&self, s: &str) -> Option<&Stage> {
        let lower = s.to_ascii_lowercase();
        if let Some(st) = self.stages.iter().find(|st| st.name.as_deref() == Some(lower.as_str())) {
            return Some(st);
        }
        s.parse::<usize>().ok().and_then(|i| self.stages.get(i))
    }

    /// The stage `--target` selects: the named/indexed one, or the last.
    pub fn target_stage(&self, target: Option<&str>) -> Option<usize> {
        match target {
            None => self.stages.len().checked_sub(1),
            Some(t) => self.stage_by_name_or_index(t).map(|s| s.index),
        }
    }

    /// Values of the global ARGs (before the first FROM): build args
    /// override defaults; defaults are expanded with the ARGs before them.
    /// ARGs with neither are absent.
    pub fn global_arg_values(&self, build_args: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut vals = BTreeMap::new();
        for a in &self.global_args {
            let v = match build_args.get(&a.name) {
                Some(v) => Some(v.clone()),
                None => a.default.as_deref().map(|d| {
                    let look = |k: &str| vals.get(k).cloned();
                    expand(d, &look, self.directives.escape).unwrap_or_else(|_| d.to_string())
                }),
            };
            if let Some(v) = v {
                vals.insert(a.name.clone(), v);
            }
        }
        vals
    }

    /// The earlier stage this stage's `FROM` names (after expanding global
    /// ARGs, so `FROM ${BASE}` works), or `None` for an image.
    pub fn base_stage(&self, stage: usize, build_args: &BTreeMap<String, String>) -> Option<usize> {
        let st = self.stages.get(stage)?;
        let globals = self.global_arg_values(build_args);
        let look = |k: &str| globals.get(k).cloned();
        let base = expand(&st.base, &look, self.directives.escape).ok()?;
        let base = base.to_ascii_lowercase();
        self.stages[..stage]
            .iter()
            .rev()
            .find(|s| s.name.as_deref() == Some(base.as_str()))
            .map(|s| s.index)
    }

    /// Stages `stage` needs, without build args (defaults only).
    pub fn dependencies(&self, stage: usize) -> Vec<usize> {
        self.dependencies_with_args(stage, &BTreeMap::new())
    }

    /// Stages `stage` needs directly: its `FROM` stage, `COPY --from=` and
    /// `RUN --mount=…,from=` stages (by name or index). Sorted, no
    /// duplicates, never `stage` itself.
    pub fn dependencies_with_args(&self, stage: usize, build_args: &BTreeMap<String, String>) -> Vec<usize> {
        let Some(st) = self.stages.get(stage) else {
            return Vec::new();
        };
        let mut deps = Vec::new();
        if let Some(b) = self.base_stage(stage, build_args) {
            deps.push(b);
        }
        let globals = self.global_arg_values(build_args);
        let esc = self.directives.escape;
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        let refer = |from: &str, vars: &BTreeMap<String, String>, deps: &mut Vec<usize>| {
            let look = |k: &str| vars.get(k).cloned();
            let name = expand(from, &look, esc).unwrap_or_else(|_| from.to_string());
            if let Some(s) = self.stage_by_name_or_index(&name) {
                if s.index != stage {
                    deps.push(s.index);
                }
            }
        };
        for ins in &st.instructions {
            match &ins.kind {
                InstructionKind::Arg(decls) => {
                    for d in decls {
                        let look = |k: &str| vars.get(k).cloned();
                        let v = build_args
                            .get(&d.name)
                            .cloned()
                            .or_else(|| d.default.as_deref().map(|x| expand(x, &look, esc).unwrap_or_default()))
                            .or_else(|| globals.get(&d.name).cloned());
                        if let Some(v) = v {
                            vars.insert(d.name.clone(), v);
                        }
                    }
                }
                InstructionKind::Env(pairs) => {
                    for (k, v) in pairs {
                        let look = |k: &str| vars.get(k).cloned();
                        let v = expand(v, &look, esc).unwrap_or_default();
                        vars.insert(k.clone(), v);
                    }
                }
                InstructionKind::Copy(c) => {
                    if let Some(f) = &c.from {
                        refer(f, &vars, &mut deps);
                    }
                }
                InstructionKind::Run { mounts, .. } => {
                    for m in mounts {
                        if let Some(f) = m.options.get("from") {
                            refer(f, &vars, &mut deps);
                        }
                    }
                }
                _ => {}
            }
        }
        deps.sort_unstable();
        deps.dedup();
        deps
    }

    /// Stages needed to build `target`, dependencies first, `target` last;
    /// stages the target does not need are left out.
    pub fn needed_for(&self, target: usize) -> Vec<usize> {
        self.needed_for_with_args(target, &BTreeMap::new())
    }

    /// [`Dockerfile::needed_for`] with build args (for `FROM ${BASE}`).
    /// A dependency cycle is cut where it closes (the executor reports it).
    pub fn needed_for_with_args(&self, target: usize, build_args: &BTreeMap<String, String>) -> Vec<usize> {
        let mut order = Vec::new();
        let mut state = vec![0u8; self.stages.len()]; // 0 new, 1 visiting, 2 done
        self.visit(target, build_args, &mut state, &mut order);
        order
    }

    fn visit(&self, s: usize, args: &BTreeMap<String, String>, state: &mut [u8], order: &mut Vec<usize>) {
        if s >= state.len() || state[s] != 0 {
            return;
        }
        state[s] = 1;
        for d in self.dependencies_with_args(s, args) {
            self.visit(d, args, state, order);
        }
        state[s] = 2;
        order.push(s);
    }

    /// The stages that depend on each other in a cycle, if any (empty when
    /// the graph is acyclic).
    pub fn dependency_cycle(&self, build_args: &BTreeMap<String, String>) -> Vec<usize> {
        fn walk(
            df: &Dockerfile,
            s: usize,
            args: &BTreeMap<String, String>,
            state: &mut [u8],
            stack: &mut Vec<usize>,
        ) -> Option<Vec<usize>> {
            state[s] = 1;
            stack.push(s);
            for d in df.dependencies_with_args(s, args) {
                if state[d] == 1 {
                    let pos = stack.iter().position(|&x| x == d).unwrap_or(0);
                    return Some(stack[pos..].to_vec());
                }
                if state[d] == 0 {
                    if let Some(c) = walk(df, d, args, state, stack) {
                        return Some(c);
                    }
                }
            }
            stack.pop();
            state[s] = 2;
            None
        }
        let mut state = vec![0u8; self.stages.len()];
        for s in 0..self.stages.len() {
            if state[s] == 0 {
                if let Some(c) = walk(self, s, build_args, &mut state, &mut Vec::new()) {
                    return c;
                }
            }
        }
        Vec::new()
    }
}
