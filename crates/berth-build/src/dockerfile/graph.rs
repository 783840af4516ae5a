//! The stage graph: which stage a name or index means, which stages a stage
//! depends on (`FROM <stage>`, `COPY --from`, `RUN --mount=from=`), and the
//! order in which a target's stages must be built.
//!
//! Only answers questions about the parsed file; it never builds, pulls or
//! resolves images. A name that is not a stage is an image reference.

use std::collections::BTreeMap;

use super::ast::{Dockerfile, InstructionKind, Stage};
use super::expand::{expand, vars_too_long, MAX_VARS_LEN};
use super::ParseError;

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

    /// Values of the global scope: the predefined platform ARGs (a build
    /// arg of the same name overrides one), then the global ARGs (before
    /// the first FROM): build args override defaults; defaults are expanded
    /// with what is in scope before them. A global ARG with neither leaves
    /// a predefined value of its name as it was, and is absent otherwise. A default that does not expand is
    /// taken as it is written, and values past [`MAX_VARS_LEN`] in all are
    /// left out: [`Self::checked_global_arg_values`] reports both.
    pub fn global_arg_values(&self, build_args: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        self.global_values(build_args, false).unwrap_or_default()
    }

    /// [`Self::global_arg_values`], or the first global ARG whose default
    /// does not expand (or takes the values past [`MAX_VARS_LEN`]), with
    /// its position. The file name is left for the caller to set.
    pub fn checked_global_arg_values(
        &self,
        build_args: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ParseError> {
        self.global_values(build_args, true)
    }

    fn global_values(
        &self,
        build_args: &BTreeMap<String, String>,
        strict: bool,
    ) -> Result<BTreeMap<String, String>, ParseError> {
        let mut vals: BTreeMap<String, String> = self
            .predefined_args
            .iter()
            .map(|(k, v)| (k.clone(), build_args.get(k).unwrap_or(v).clone()))
            .collect();
        let mut total = 0;
        for a in &self.global_args {
            let v = match build_args.get(&a.name) {
                Some(v) => Some(v.clone()),
                None => match &a.default {
                    None => None,
                    Some(d) => {
                        let look = |k: &str| vals.get(k).cloned();
                        match expand(d, &look, self.directives.escape) {
                            Ok(v) => Some(v),
                            Err(e) if strict => return Err(e.at(a.line, a.column)),
                            Err(_) => Some(d.to_string()),
                        }
                    }
                },
            };
            if let Some(v) = v {
                total += a.name.len() + v.len();
                if total > MAX_VARS_LEN {
                    if strict {
                        return Err(ParseError::new("", a.line, a.column, vars_too_long()));
                    }
                    break;
                }
                vals.insert(a.name.clone(), v);
            }
        }
        Ok(vals)
    }

    /// The earlier stage this stage's `FROM` names (after expanding global
    /// ARGs, so `FROM ${BASE}` works), or `None` for an image.
    pub fn base_stage(&self, stage: usize, build_args: &BTreeMap<String, String>) -> Option<usize> {
        self.base_stage_in(stage, &self.global_arg_values(build_args))
    }

    /// [`Self::base_stage`] with the global ARG values already worked out
    /// (they are the same for every stage: callers that walk the stages
    /// work them out once).
    fn base_stage_in(&self, stage: usize, globals: &BTreeMap<String, String>) -> Option<usize> {
        let st = self.stages.get(stage)?;
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
        self.dependencies_in(stage, build_args, &self.global_arg_values(build_args))
    }

    fn dependencies_in(
        &self,
        stage: usize,
        build_args: &BTreeMap<String, String>,
        globals: &BTreeMap<String, String>,
    ) -> Vec<usize> {
        let Some(st) = self.stages.get(stage) else {
            return Vec::new();
        };
        let mut deps = Vec::new();
        if let Some(b) = self.base_stage_in(stage, globals) {
            deps.push(b);
        }
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
        let globals = self.global_arg_values(build_args);
        // Depth first, with an explicit stack: a file of thousands of
        // stages, each on the one before, must not exhaust the real one.
        let mut stack = vec![(target, None::<std::vec::IntoIter<usize>>)];
        while let Some((s, deps)) = stack.last_mut() {
            let s = *s;
            if deps.is_none() {
                if s >= state.len() || state[s] != 0 {
                    stack.pop();
                    continue;
                }
                state[s] = 1;
                *deps = Some(self.dependencies_in(s, build_args, &globals).into_iter());
            }
            match deps.as_mut().and_then(Iterator::next) {
                Some(d) => stack.push((d, None)),
                None => {
                    state[s] = 2;
                    order.push(s);
                    stack.pop();
                }
            }
        }
        order
    }

    /// The stages that depend on each other in a cycle, if any (empty when
    /// the graph is acyclic).
    pub fn dependency_cycle(&self, build_args: &BTreeMap<String, String>) -> Vec<usize> {
        let globals = self.global_arg_values(build_args);
        let mut state = vec![0u8; self.stages.len()]; // 0 new, 1 on the path, 2 done
        for start in 0..self.stages.len() {
            if state[start] != 0 {
                continue;
            }
            // Depth first with an explicit stack (see `needed_for_with_args`);
            // `path` is the stages on it, in order.
            let mut path: Vec<usize> = Vec::new();
            let mut stack = vec![(start, None::<std::vec::IntoIter<usize>>)];
            while let Some((s, deps)) = stack.last_mut() {
                let s = *s;
                if deps.is_none() {
                    state[s] = 1;
                    path.push(s);
                    *deps = Some(self.dependencies_in(s, build_args, &globals).into_iter());
                }
                match deps.as_mut().and_then(Iterator::next) {
                    Some(d) if state[d] == 1 => {
                        let pos = path.iter().position(|&x| x == d).unwrap_or(0);
                        return path[pos..].to_vec();
                    }
                    Some(d) if state[d] == 0 => stack.push((d, None)),
                    Some(_) => {}
                    None => {
                        state[s] = 2;
                        path.pop();
                        stack.pop();
                    }
                }
            }
        }
        Vec::new()
    }
}
