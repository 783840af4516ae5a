//! Short syntax → compose's long (canonical) syntax, one file at a time,
//! before files are merged: `"8080:80"` becomes a port mapping, `"./d:/x:ro"`
//! a bind mount, a list of `K=V` a mapping, `command: "a b"` a list, and
//! relative paths absolute (against the directory the file's paths are
//! relative to). Merging then works on one shape per key, as compose's does.
//!
//! Short forms it cannot read are errors at their location. Keys it does
//! not know are left for the typed model to reject.

use std::path::{Component, Path, PathBuf};

use crate::error::{ComposeError, Loc};
use crate::yaml::{resolve_plain, Key, Node, Resolved, Value};

type R = Result<(), ComposeError>;

/// Where relative paths in a file point, and the home directory for `~`.
pub struct PathBase<'a> {
    /// The directory relative paths are resolved against.
    pub dir: &'a Path,
    /// `$HOME`, for `~/…`.
    pub home: Option<&'a Path>,
}

impl PathBase<'_> {
    /// `p` made absolute and lexically clean.
    pub fn resolve(&self, p: &str) -> String {
        let joined = if p == "~" || p.starts_with("~/") {
            match self.home {
                Some(h) => h.join(p.trim_start_matches('~').trim_start_matches('/')),
                None => PathBuf::from(p),
            }
        } else {
            self.dir.join(p)
        };
        clean(&joined).to_string_lossy().into_owned()
    }
}

/// Remove `.` and resolve `..` without touching the filesystem.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Canonicalise a whole parsed file (top level).
pub fn file(root: &mut Node, base: &PathBase) -> R {
    if !matches!(root.value, Value::Map(_)) {
        if root.is_null() {
            root.value = Value::Map(Vec::new());
            return Ok(());
        }
        return Err(ComposeError::invalid(
            &root.loc,
            "(root)",
            format!("expected a mapping, got {}", root.kind()),
        ));
    }
    if let Some(services) = root.get_mut("services") {
        null_to_map(services);
        let Value::Map(entries) = &mut services.value else {
            return Err(expected(services, "services", "a mapping of services"));
        };
        for (k, svc) in entries.iter_mut() {
            null_to_map(svc);
            service(svc, &format!("services.{}", k.name), base)?;
        }
    }
    for kind in ["networks", "volumes", "secrets", "configs"] {
        if let Some(section) = root.get_mut(kind) {
            null_to_map(section);
            let Value::Map(entries) = &mut section.value else {
                return Err(expected(section, kind, "a mapping"));
            };
            for (k, res) in entries.iter_mut() {
                null_to_map(res);
                top_level_resource(res, kind, &format!("{kind}.{}", k.name), base)?;
            }
        }
    }
    Ok(())
}

fn null_to_map(n: &mut Node) {
    if n.is_null() {
        n.value = Value::Map(Vec::new());
    }
}

fn expected(n: &Node, path: &str, what: &str) -> ComposeError {
    ComposeError::invalid(&n.loc, path, format!("expected {what}, got {}", n.kind()))
}

fn top_level_resource(res: &mut Node, kind: &str, path: &str, base: &PathBase) -> R {
    if !matches!(res.value, Value::Map(_)) {
        return Err(expected(res, path, "a mapping"));
    }
    // The old `external: {name: x}` form.
    if let Some(ext) = res.get("external") {
        if let Some(name) = ext.get("name").cloned() {
            let loc = ext.loc.clone();
            res.insert("external", Node::plain("true", &loc));
            res.insert("name", name);
        }
    }
    for key in ["labels", "driver_opts"] {
        if let Some(n) = res.get_mut(key) {
            to_label_map(n, &child(path, key))?;
        }
    }
    if kind == "secrets" || kind == "configs" {
        if let Some(f) = res.get_mut("file") {
            if let Some(p) = f.as_scalar() {
                let abs = base.resolve(p);
                *f = Node::string(abs, &f.loc);
            }
        }
    }
    if kind == "networks" {
        if let Some(ipam) = res.get_mut("ipam") {
            if let Some(Value::Seq(configs)) = ipam.get_mut("config").map(|c| &mut c.value) {
                for (i, c) in configs.iter_mut().enumerate() {
                    if let Some(aux) = c.get_mut("aux_addresses") {
                        to_label_map(aux, &format!("{path}.ipam.config[{i}].aux_addresses"))?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Canonicalise one service (also used for `extends` bases).
pub fn service(svc: &mut Node, path: &str, base: &PathBase) -> R {
    if !matches!(svc.value, Value::Map(_)) {
        return Err(expected(svc, path, "a mapping"));
    }
    let keys: Vec<String> = svc
        .as_map()
        .map(|m| m.iter().map(|(k, _)| k.name.clone()).collect())
        .unwrap_or_default();
    for key in keys {
        let p = child(path, &key);
        let Some(n) = svc.get_mut(&key) else { continue };
        match key.as_str() {
            "build" => build(n, &p, base)?,
            "command" | "entrypoint" => shell_command(n, &p)?,
            "environment" => to_string_map(n, &p, '=')?,
            "labels" | "annotations" | "sysctls" | "storage_opt" => to_label_map(n, &p)?,
            "env_file" => env_file(n, &p, base)?,
            "dns"
            | "dns_search"
            | "dns_opt"
            | "tmpfs"
            | "cap_add"
            | "cap_drop"
            | "profiles"
            | "security_opt"
            | "links"
            | "external_links"
            | "volumes_from"
            | "group_add"
            | "device_cgroup_rules" => string_list(n, &p)?,
            "label_file" => {
                string_list(n, &p)?;
                if let Value::Seq(items) = &mut n.value {
                    for item in items.iter_mut() {
                        let abs = base.resolve(item.as_scalar().unwrap_or(""));
                        *item = Node::string(abs, &item.loc);
                    }
                }
            }
            "expose" => string_list(n, &p)?,
            "extra_hosts" => extra_hosts(n, &p)?,
            "depends_on" => depends_on(n, &p)?,
            "networks" => service_networks(n, &p)?,
            "ports" => ports(n, &p)?,
            "volumes" => volumes(n, &p, base)?,
            "secrets" | "configs" => file_refs(n, &p)?,
            "extends" => {
                if let Some(s) = n.as_scalar().map(str::to_string) {
                    let loc = n.loc.clone();
                    let mut m = Node::map(&loc);
                    m.insert("service", Node::string(s, &loc));
                    *n = m;
                }
            }
            "healthcheck" => healthcheck(n, &p)?,
            "ulimits" => ulimits(n, &p)?,
            "logging" => {
                if let Some(o) = n.get_mut("options") {
                    to_label_map(o, &format!("{p}.options"))?;
                }
            }
            "devices" => devices(n, &p)?,
            "stop_grace_period" => duration(n, &p)?,
            "mem_limit" | "mem_reservation" | "memswap_limit" | "shm_size" => bytes(n, &p)?,
            "deploy" => deploy(n, &p)?,
            _ => {}
        }
    }
    Ok(())
}

/// A scalar as a string node (numbers and booleans as written).
fn stringify(n: &mut Node) {
    if let Value::Scalar { quoted, .. } = &mut n.value {
        *quoted = true;
    }
}

/// Like `to_string_map`, with a missing value as "" (labels, options).
fn to_label_map(n: &mut Node, path: &str) -> R {
    to_string_map(n, path, '=')?;
    if let Value::Map(entries) = &mut n.value {
        for (_, v) in entries.iter_mut() {
            if matches!(v.value, Value::Null) {
                *v = Node::string("", &v.loc);
            }
        }
    }
    Ok(())
}

/// A list of `K=V` (or `K:V` for `sep` ':'), or a mapping → a mapping of
/// strings; `K` alone maps to null.
fn to_string_map(n: &mut Node, path: &str, sep: char) -> R {
    match &mut n.value {
        Value::Null => n.value = Value::Map(Vec::new()),
        Value::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                match &v.value {
                    Value::Scalar { .. } if v.is_null() => v.value = Value::Null,
                    Value::Scalar { .. } => stringify(v),
                    Value::Null => {}
                    _ => return Err(expected(v, &child(path, &k.name), "a string, number, boolean or null")),
                }
            }
        }
        Value::Seq(items) => {
            let mut entries: Vec<(Key, Node)> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let Some(text) = item.as_scalar() else {
                    return Err(expected(item, &format!("{path}[{i}]"), "a KEY=VALUE string"));
                };
                let (k, v) = match text.split_once(sep) {
                    Some((k, v)) => (k, Some(v)),
                    None => (text, None),
                };
                let value = match v {
                    Some(v) => Node::string(v, &item.loc),
                    None => Node::new(Value::Null, &item.loc),
                };
                entries.retain(|(e, _)| e.name != k);
                entries.push((
                    Key {
                        name: k.to_string(),
                        loc: item.loc.clone(),
                    },
                    value,
                ));
            }
            n.value = Value::Map(entries);
        }
        Value::Scalar { .. } => {
            return Err(expected(n, path, "a mapping or a list of KEY=VALUE"));
        }
    }
    Ok(())
}

/// A string or list → a list of strings.
fn string_list(n: &mut Node, path: &str) -> R {
    match &mut n.value {
        Value::Null => n.value = Value::Seq(Vec::new()),
        Value::Scalar { .. } => {
            let mut item = n.clone();
            stringify(&mut item);
            n.value = Value::Seq(vec![item]);
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                if !matches!(item.value, Value::Scalar { .. }) || item.is_null() {
                    return Err(expected(item, &format!("{path}[{i}]"), "a string"));
                }
                stringify(item);
            }
        }
        Value::Map(_) => return Err(expected(n, path, "a string or a list of strings")),
    }
    Ok(())
}

/// `command: "a 'b c'"` → `["a", "b c"]` (split as a POSIX shell would).
fn shell_command(n: &mut Node, path: &str) -> R {
    match &n.value {
        Value::Scalar { text, .. } if !n.is_null() => {
            let words = shell_words::split(text)
                .map_err(|e| ComposeError::invalid(&n.loc, path, format!("cannot split {text:?}: {e}")))?;
            let loc = n.loc.clone();
            n.value = Value::Seq(words.into_iter().map(|w| Node::string(w, &loc)).collect());
            Ok(())
        }
        Value::Seq(_) => string_list(n, path),
        _ if n.is_null() => Ok(()),
        _ => Err(expected(n, path, "a string or a list of strings")),
    }
}

fn build(n: &mut Node, path: &str, base: &PathBase) -> R {
    if let Some(ctx) = n.as_scalar().map(str::to_string) {
        let loc = n.loc.clone();
        let mut m = Node::map(&loc);
        m.insert("context", Node::string(ctx, &loc));
        *n = m;
    }
    if !matches!(n.value, Value::Map(_)) {
        return Err(expected(n, path, "a string or a mapping"));
    }
    let loc = n.loc.clone();
    let ctx = n.get("context").and_then(Node::as_scalar).unwrap_or(".").to_string();
    let ctx = if is_remote(&ctx) { ctx } else { base.resolve(&ctx) };
    n.insert("context", Node::string(ctx, &loc));
    if n.get("dockerfile").is_none() && n.get("dockerfile_inline").is_none() {
        n.insert("dockerfile", Node::string("Dockerfile", &loc));
    }
    if let Some(a) = n.get_mut("args") {
        to_string_map(a, &child(path, "args"), '=')?;
    }
    if let Some(a) = n.get_mut("labels") {
        to_label_map(a, &child(path, "labels"))?;
    }
    if let Some(a) = n.get_mut("additional_contexts") {
        to_label_map(a, &child(path, "additional_contexts"))?;
        if let Some(entries) = a.as_map_mut() {
            for (_, v) in entries.iter_mut() {
                if let Some(p) = v.as_scalar() {
                    if !is_remote(p) && !p.contains(':') {
                        let abs = base.resolve(p);
                        *v = Node::string(abs, &v.loc);
                    }
                }
            }
        }
    }
    for key in ["cache_from", "cache_to", "tags", "platforms", "entitlements"] {
        if let Some(a) = n.get_mut(key) {
            string_list(a, &child(path, key))?;
        }
    }
    if let Some(ssh) = n.get_mut("ssh") {
        if let Value::Map(_) = ssh.value {
            to_string_map(ssh, &child(path, "ssh"), '=')?;
            let loc = ssh.loc.clone();
            let items = ssh
                .as_map()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| match v.as_scalar() {
                            Some(v) => Node::string(format!("{}={v}", k.name), &loc),
                            None => Node::string(k.name.clone(), &loc),
                        })
                        .collect()
                })
                .unwrap_or_default();
            ssh.value = Value::Seq(items);
        } else {
            string_list(ssh, &child(path, "ssh"))?;
        }
    }
    if let Some(s) = n.get_mut("secrets") {
        file_refs(s, &child(path, "secrets"))?;
    }
    if let Some(h) = n.get_mut("extra_hosts") {
        extra_hosts(h, &child(path, "extra_hosts"))?;
    }
    if let Some(s) = n.get_mut("shm_size") {
        bytes(s, &child(path, "shm_size"))?;
    }
    if let Some(u) = n.get_mut("ulimits") {
        ulimits(u, &child(path, "ulimits"))?;
    }
    Ok(())
}

/// A git or HTTP(S) build context is passed on as written.
fn is_remote(ctx: &str) -> bool {
    ctx.contains("://") || ctx.starts_with("git@") || ctx.starts_with("github.com/")
}

fn env_file(n: &mut Node, path: &str, base: &PathBase) -> R {
    if n.as_scalar().is_some() {
        string_list(n, path)?;
    }
    let Value::Seq(items) = &mut n.value else {
        return Err(expected(n, path, "a string or a list"));
    };
    for (i, item) in items.iter_mut().enumerate() {
        let p = format!("{path}[{i}]");
        let loc = item.loc.clone();
        if let Some(file) = item.as_scalar().map(str::to_string) {
            let mut m = Node::map(&loc);
            m.insert("path", Node::string(file, &loc));
            *item = m;
        }
        let Some(file) = item.get("path").and_then(Node::as_scalar).map(str::to_string) else {
            return Err(expected(item, &p, "a path or a mapping with `path`"));
        };
        item.insert("path", Node::string(base.resolve(&file), &loc));
        if item.get("required").is_none() {
            item.insert("required", Node::plain("true", &loc));
        }
    }
    Ok(())
}

/// `host:ip`, `host=ip` or a mapping → a list of `host=ip`.
fn extra_hosts(n: &mut Node, path: &str) -> R {
    let loc = n.loc.clone();
    match &n.value {
        Value::Map(entries) => {
            let mut items = Vec::new();
            for (k, v) in entries {
                match &v.value {
                    Value::Seq(ips) => {
                        for ip in ips {
                            let ip = ip.as_scalar().unwrap_or("");
                            items.push(Node::string(format!("{}={ip}", k.name), &loc));
                        }
                    }
                    _ => {
                        let ip = v.as_scalar().unwrap_or("");
                        items.push(Node::string(format!("{}={ip}", k.name), &loc));
                    }
                }
            }
            n.value = Value::Seq(items);
        }
        _ => {
            string_list(n, path)?;
            if let Value::Seq(items) = &mut n.value {
                for (i, item) in items.iter_mut().enumerate() {
                    let text = item.as_scalar().unwrap_or("").to_string();
                    let Some((h, ip)) = text.split_once('=').or_else(|| text.split_once(':')) else {
                        return Err(expected(item, &format!("{path}[{i}]"), "HOST:IP or HOST=IP"));
                    };
                    // "[::1]" is written "::1".
                    let ip = ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')).unwrap_or(ip);
                    let entry = format!("{h}={ip}");
                    *item = Node::string(entry, &item.loc);
                }
            }
        }
    }
    Ok(())
}

/// A list of names → a mapping of each name to `value(its location)`.
fn names_to_map(n: &mut Node, path: &str, what: &str, value: fn(&Loc) -> Node) -> R {
    if let Value::Seq(items) = &n.value {
        let mut entries = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Some(name) = item.as_scalar() else {
                return Err(expected(item, &format!("{path}[{i}]"), what));
            };
            let key = Key {
                name: name.to_string(),
                loc: item.loc.clone(),
            };
            entries.push((key, value(&item.loc)));
        }
        n.value = Value::Map(entries);
    }
    Ok(())
}

/// A list of services → a mapping with compose's defaults.
fn depends_on(n: &mut Node, path: &str) -> R {
    names_to_map(n, path, "a service name", Node::map)?;
    null_to_map(n);
    let Value::Map(entries) = &mut n.value else {
        return Err(expected(n, path, "a list or a mapping of services"));
    };
    for (k, v) in entries.iter_mut() {
        null_to_map(v);
        if !matches!(v.value, Value::Map(_)) {
            return Err(expected(v, &child(path, &k.name), "a mapping"));
        }
        let loc = v.loc.clone();
        if v.get("condition").is_none() {
            v.insert("condition", Node::string("service_started", &loc));
        }
        if v.get("required").is_none() {
            v.insert("required", Node::plain("true", &loc));
        }
    }
    Ok(())
}

fn service_networks(n: &mut Node, path: &str) -> R {
    names_to_map(n, path, "a network name", |loc| Node::new(Value::Null, loc))?;
    null_to_map(n);
    if let Value::Map(entries) = &mut n.value {
        for (k, v) in entries.iter_mut() {
            if let Some(a) = v.get_mut("aliases") {
                string_list(a, &format!("{path}.{}.aliases", k.name))?;
            }
        }
        Ok(())
    } else {
        Err(expected(n, path, "a list or a mapping of networks"))
    }
}

fn file_refs(n: &mut Node, path: &str) -> R {
    null_to_seq(n);
    let Value::Seq(items) = &mut n.value else {
        return Err(expected(n, path, "a list"));
    };
    for (i, item) in items.iter_mut().enumerate() {
        let p = format!("{path}[{i}]");
        if let Some(name) = item.as_scalar().map(str::to_string) {
            let loc = item.loc.clone();
            let mut m = Node::map(&loc);
            m.insert("source", Node::string(name, &loc));
            *item = m;
        }
        if !matches!(item.value, Value::Map(_)) {
            return Err(expected(item, &p, "a name or a mapping"));
        }
        for key in ["uid", "gid"] {
            if let Some(v) = item.get_mut(key) {
                stringify(v);
            }
        }
        if let Some(mode) = item.get_mut("mode") {
            octal_mode(mode, &format!("{p}.mode"))?;
        }
    }
    Ok(())
}

fn null_to_seq(n: &mut Node) {
    if n.is_null() {
        n.value = Value::Seq(Vec::new());
    }
}

/// `mode: 0440` is octal, as compose (YAML 1.1) reads it; written as a number.
fn octal_mode(n: &mut Node, path: &str) -> R {
    let Some(text) = n.as_scalar().map(str::to_string) else {
        return Err(expected(n, path, "a file mode such as 0440"));
    };
    let value = if let Some(o) = text.strip_prefix("0o") {
        u32::from_str_radix(o, 8).ok()
    } else if text.len() > 1 && text.starts_with('0') {
        u32::from_str_radix(&text[1..], 8).ok()
    } else {
        text.parse::<u32>().ok()
    };
    match value {
        Some(v) => {
            *n = Node::plain(v.to_string(), &n.loc);
            Ok(())
        }
        None => Err(expected(n, path, "a file mode such as 0440")),
    }
}

fn healthcheck(n: &mut Node, path: &str) -> R {
    null_to_map(n);
    if !matches!(n.value, Value::Map(_)) {
        return Err(expected(n, path, "a mapping"));
    }
    if let Some(t) = n.get_mut("test") {
        if let Some(cmd) = t.as_scalar().map(str::to_string) {
            let loc = t.loc.clone();
            t.value = Value::Seq(vec![Node::string("CMD-SHELL", &loc), Node::string(cmd, &loc)]);
        } else {
            string_list(t, &format!("{path}.test"))?;
        }
    }
    for key in ["interval", "timeout", "start_period", "start_interval"] {
        if let Some(d) = n.get_mut(key) {
            duration(d, &child(path, key))?;
        }
    }
    Ok(())
}

fn ulimits(n: &mut Node, path: &str) -> R {
    null_to_map(n);
    let Value::Map(entries) = &mut n.value else {
        return Err(expected(n, path, "a mapping"));
    };
    for (k, v) in entries.iter_mut() {
        let p = child(path, &k.name);
        match &v.value {
            Value::Scalar { .. } => {
                if !matches!(v.as_scalar().map(resolve_plain), Some(Resolved::Int(_))) {
                    return Err(expected(v, &p, "a number or a mapping of soft and hard"));
                }
            }
            Value::Map(_) => {}
            _ => return Err(expected(v, &p, "a number or a mapping of soft and hard")),
        }
    }
    Ok(())
}

/// Devices in their short string form `HOST[:CONTAINER[:PERMISSIONS]]`.
fn devices(n: &mut Node, path: &str) -> R {
    null_to_seq(n);
    let Value::Seq(items) = &mut n.value else {
        return Err(expected(n, path, "a list"));
    };
    for (i, item) in items.iter_mut().enumerate() {
        if let Value::Map(_) = item.value {
            let get = |k: &str| item.get(k).and_then(Node::as_scalar).map(str::to_string);
            let Some(source) = get("source") else {
                return Err(expected(item, &format!("{path}[{i}]"), "a device with `source`"));
            };
            let target = get("target").unwrap_or_else(|| source.clone());
            let perms = get("permissions").unwrap_or_else(|| "rwm".into());
            *item = Node::string(format!("{source}:{target}:{perms}"), &item.loc);
        } else if item.as_scalar().is_some() {
            stringify(item);
        } else {
            return Err(expected(item, &format!("{path}[{i}]"), "a device"));
        }
    }
    Ok(())
}

fn deploy(n: &mut Node, path: &str) -> R {
    null_to_map(n);
    if !matches!(n.value, Value::Map(_)) {
        return Err(expected(n, path, "a mapping"));
    }
    if let Some(l) = n.get_mut("labels") {
        to_label_map(l, &format!("{path}.labels"))?;
    }
    if let Some(res) = n.get_mut("resources") {
        for which in ["limits", "reservations"] {
            if let Some(r) = res.get_mut(which) {
                let p = format!("{path}.resources.{which}");
                if let Some(c) = r.get_mut("cpus") {
                    let ok = matches!(
                        c.as_scalar().map(resolve_plain),
                        Some(Resolved::Int(_) | Resolved::Float(_))
                    ) || c.as_scalar().is_some_and(|s| s.parse::<f64>().is_ok());
                    if !ok {
                        return Err(expected(c, &format!("{p}.cpus"), "a number of CPUs"));
                    }
                    stringify(c);
                }
                if let Some(m) = r.get_mut("memory") {
                    bytes(m, &format!("{p}.memory"))?;
                }
            }
        }
    }
    for key in ["restart_policy", "update_config", "rollback_config"] {
        if let Some(section) = n.get_mut(key) {
            for d in ["delay", "window", "monitor"] {
                if let Some(v) = section.get_mut(d) {
                    duration(v, &format!("{path}.{key}.{d}"))?;
                }
            }
        }
    }
    Ok(())
}

/// A duration in Go's notation (`1m30s`), written back as Go prints it.
fn duration(n: &mut Node, path: &str) -> R {
    rewrite_scalar(n, path, "a duration such as 10s or 1m30s", |t| {
        crate::units::parse_duration(t).map(crate::units::format_duration)
    })
}

/// A size (`512m`, `1gb`, `1024`) → its number of bytes, as a string.
fn bytes(n: &mut Node, path: &str) -> R {
    rewrite_scalar(n, path, "a size such as 512m or 1g", |t| {
        crate::units::parse_bytes(t).map(|b| b.to_string())
    })
}

/// Replace a scalar by `convert(text)` as a string, or say it is not `what`.
fn rewrite_scalar(n: &mut Node, path: &str, what: &str, convert: impl Fn(&str) -> Option<String>) -> R {
    let Some(text) = n.as_scalar().map(str::to_string) else {
        return Err(expected(n, path, what));
    };
    match convert(&text) {
        Some(v) => {
            *n = Node::string(v, &n.loc);
            Ok(())
        }
        None => Err(ComposeError::invalid(
            &n.loc,
            path,
            format!("expected {what}, got {text:?}"),
        )),
    }
}

const PORT_SYNTAX: &str = "a port like [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]";

fn ports(n: &mut Node, path: &str) -> R {
    null_to_seq(n);
    let Value::Seq(items) = &n.value else {
        return Err(expected(n, path, "a list of ports"));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match &item.value {
            Value::Map(_) => {
                let mut m = item.clone();
                let loc = m.loc.clone();
                let Some(target) = m.get("target") else {
                    return Err(ComposeError::invalid(&loc, &p, "a port mapping needs `target`"));
                };
                if target.as_scalar().and_then(|t| t.parse::<u16>().ok()).is_none() {
                    return Err(expected(target, &format!("{p}.target"), "a port number"));
                }
                if m.get("mode").is_none() {
                    m.insert("mode", Node::string("ingress", &loc));
                }
                if let Some(pb) = m.get_mut("published") {
                    stringify(pb);
                }
                if m.get("protocol").is_none() {
                    m.insert("protocol", Node::string("tcp", &loc));
                }
                out.push(m);
            }
            Value::Scalar { text, .. } if !item.is_null() => {
                let parsed = parse_port(text).ok_or_else(|| {
                    ComposeError::invalid(&item.loc, &p, format!("expected {PORT_SYNTAX}, got {text:?}"))
                })?;
                for port in parsed {
                    let loc = &item.loc;
                    let mut m = Node::map(loc);
                    m.insert("mode", Node::string("ingress", loc));
                    if let Some(ip) = port.host_ip {
                        m.insert("host_ip", Node::string(ip, loc));
                    }
                    m.insert("target", Node::plain(port.target.to_string(), loc));
                    if let Some(pb) = port.published {
                        m.insert("published", Node::string(pb, loc));
                    }
                    m.insert("protocol", Node::string(port.protocol, loc));
                    out.push(m);
                }
            }
            _ => return Err(expected(item, &p, PORT_SYNTAX)),
        }
    }
    n.value = Value::Seq(out);
    Ok(())
}

/// One published port of the short syntax.
#[derive(Debug, PartialEq)]
pub struct ShortPort {
    /// Host address to bind.
    pub host_ip: Option<String>,
    /// Container port.
    pub target: u16,
    /// Host port or range, when published.
    pub published: Option<String>,
    /// tcp, udp or sctp.
    pub protocol: String,
}

fn port_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?);
            (a <= b).then_some((a, b))
        }
        None => {
            let a = s.parse::<u16>().ok()?;
            Some((a, a))
        }
    }
}

/// `[HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTOCOL]`, ranges
/// expanded one mapping per container port, as compose does.
pub fn parse_port(spec: &str) -> Option<Vec<ShortPort>> {
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, p)) if matches!(p, "tcp" | "udp" | "sctp") => (r, p),
        Some(_) => return None,
        None => (spec, "tcp"),
    };
    // An IPv6 host address is written in brackets.
    let (host_ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, after) = r.split_once(']')?;
        (Some(ip.to_string()), after.strip_prefix(':')?)
    } else {
        (None, rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, published, target) = match (host_ip, parts.as_slice()) {
        (None, [t]) => (None, None, *t),
        (None, [p, t]) => (None, Some(*p), *t),
        (None, [ip, p, t]) => (Some(ip.to_string()), Some(*p), *t),
        (Some(ip), [p, t]) => (Some(ip), Some(*p), *t),
        _ => return None,
    };
    let published = published.filter(|p| !p.is_empty());
    let (t0, t1) = port_range(target)?;
    if t0 == 0 {
        return None;
    }
    let pub_range = match published {
        Some(p) => Some(port_range(p)?),
        None => None,
    };
    let count = (t1 - t0) as usize + 1;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let published = match pub_range {
            None => None,
            Some((p0, p1)) if count == 1 => Some(if p0 == p1 { p0.to_string() } else { format!("{p0}-{p1}") }),
            Some((p0, p1)) => {
                if (p1 - p0) as usize + 1 != count {
                    return None;
                }
                Some((p0 + i as u16).to_string())
            }
        };
        out.push(ShortPort {
            host_ip: host_ip.clone().filter(|h| !h.is_empty()),
            target: t0 + i as u16,
            published,
            protocol: protocol.to_string(),
        });
    }
    Some(out)
}

const VOLUME_SYNTAX: &str = "a volume like [SOURCE:]TARGET[:MODE]";

fn volumes(n: &mut Node, path: &str, base: &PathBase) -> R {
    null_to_seq(n);
    let Value::Seq(items) = &mut n.value else {
        return Err(expected(n, path, "a list of volumes"));
    };
    for (i, item) in items.iter_mut().enumerate() {
        let p = format!("{path}[{i}]");
        let loc = item.loc.clone();
        if let Some(spec) = item.as_scalar().map(str::to_string) {
            *item = short_volume(&spec, &loc, base)
                .ok_or_else(|| ComposeError::invalid(&loc, &p, format!("expected {VOLUME_SYNTAX}, got {spec:?}")))?;
            continue;
        }
        if !matches!(item.value, Value::Map(_)) {
            return Err(expected(item, &p, VOLUME_SYNTAX));
        }
        let kind = item.get("type").and_then(Node::as_scalar).map(str::to_string);
        let Some(kind) = kind else {
            return Err(ComposeError::invalid(&loc, &p, "a volume mapping needs `type`"));
        };
        if !matches!(
            kind.as_str(),
            "bind" | "volume" | "tmpfs" | "image" | "npipe" | "cluster"
        ) {
            return Err(ComposeError::invalid(
                &loc,
                &format!("{p}.type"),
                format!("expected one of bind, volume, tmpfs, image, npipe, cluster, got {kind:?}"),
            ));
        }
        if item.get("target").is_none() {
            return Err(ComposeError::invalid(&loc, &p, "a volume mapping needs `target`"));
        }
        if kind == "bind" {
            if let Some(src) = item.get("source").and_then(Node::as_scalar).map(str::to_string) {
                item.insert("source", Node::string(base.resolve(&src), &loc));
            }
        }
        if kind == "volume" && item.get("volume").is_none() {
            item.insert("volume", Node::map(&loc));
        }
        if let Some(t) = item.get_mut("tmpfs") {
            if let Some(s) = t.get_mut("size") {
                bytes(s, &format!("{p}.tmpfs.size"))?;
            }
            if let Some(m) = t.get_mut("mode") {
                octal_mode(m, &format!("{p}.tmpfs.mode"))?;
            }
        }
    }
    Ok(())
}

fn short_volume(spec: &str, loc: &Loc, base: &PathBase) -> Option<Node> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] if t.starts_with('/') => (Some(*s), *t, None),
        [t, m] => (None, *t, Some(*m)),
        [s, t, m] => (Some(*s), *t, Some(*m)),
        _ => return None,
    };
    if target.is_empty() || source == Some("") || !target.starts_with('/') {
        return None;
    }
    let mut m = Node::map(loc);
    let is_bind = source.is_some_and(|s| s.starts_with('/') || s.starts_with('.') || s.starts_with('~'));
    let kind = if source.is_none() || !is_bind { "volume" } else { "bind" };
    m.insert("type", Node::string(kind, loc));
    if let Some(s) = source {
        let s = if is_bind { base.resolve(s) } else { s.to_string() };
        m.insert("source", Node::string(s, loc));
    }
    m.insert("target", Node::string(target, loc));
    let mut read_only = false;
    let mut bind = Node::map(loc);
    let mut volume = Node::map(loc);
    let mut consistency = None;
    for opt in mode.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => read_only = true,
            "rw" => {}
            "z" | "Z" => bind.insert("selinux", Node::string(opt, loc)),
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                bind.insert("propagation", Node::string(opt, loc))
            }
            "nocopy" => volume.insert("nocopy", Node::plain("true", loc)),
            "consistent" | "cached" | "delegated" => consistency = Some(opt),
            _ => return None,
        }
    }
    if read_only {
        m.insert("read_only", Node::plain("true", loc));
    }
    if let Some(c) = consistency {
        m.insert("consistency", Node::string(c, loc));
    }
    if kind == "bind" {
        bind.insert("create_host_path", Node::plain("true", loc));
        m.insert("bind", bind);
    } else {
        m.insert("volume", volume);
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ports_expand_as_compose_expands_them() {
        let p = parse_port("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(
            p,
            vec![ShortPort {
                host_ip: Some("127.0.0.1".into()),
                target: 80,
                published: Some("8080".into()),
                protocol: "udp".into()
            }]
        );
        assert_eq!(parse_port("3000-3002").unwrap().len(), 3);
        let r = parse_port("9090-9091:8080-8081").unwrap();
        assert_eq!(r[1].published.as_deref(), Some("9091"));
        assert_eq!(r[1].target, 8081);
        assert_eq!(
            parse_port("8000-8010:80").unwrap()[0].published.as_deref(),
            Some("8000-8010")
        );
        assert_eq!(parse_port("[::1]:80:80").unwrap()[0].host_ip.as_deref(), Some("::1"));
        for bad in ["abc", "80:abc", "1:2:3:4", "80/http", "0", "70000", "9-8"] {
            assert!(parse_port(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn paths_are_cleaned_against_the_base() {
        let base = PathBase {
            dir: Path::new("/p/app"),
            home: Some(Path::new("/home/u")),
        };
        assert_eq!(base.resolve("./data/../x"), "/p/app/x");
        assert_eq!(base.resolve("~/c"), "/home/u/c");
        assert_eq!(base.resolve("/abs"), "/abs");
    }
}
