//! A loaded project against the engine: what `up`, `down`, `start`,
//! `stop`… do, as Docker Compose v2 does it. Containers are found by their
//! `com.docker.compose.*` labels, never by a record of our own; `up`
//! converges (a container whose config hash and image are current is left
//! alone, a changed one is recreated, missing replicas are created, extra
//! ones removed), in dependency order, waiting for each dependency's
//! condition. Every step is reported as an [`Event`] for the front to draw.
//!
//! Only engine calls happen here: no printing, no terminal, no store.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use berth_engine::containers::view::PsFilter;
use berth_engine::containers::Container;
use berth_engine::volumes::VolumeCreate;
use berth_engine::{Engine, EngineError, ErrorKind, Result};

use crate::convert::{self, network_name, volume_name, Instance};
use crate::graph;
use crate::identity::{self, config_hash, labels, resource_labels};
use crate::loader::Loaded;
use crate::model::Condition;

/// One step of an operation: `Container p-web-1  Started`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `Container`, `Network`, `Volume` or `Service`; `Warning` for one of
    /// compose's warnings (`status` is its text).
    pub kind: &'static str,
    /// The object's name.
    pub name: String,
    /// What happened (`Creating`, `Created`, `Started`, `Healthy`, …).
    pub status: String,
}

/// The label Docker puts on an anonymous volume.
const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// How often a wait looks at a container's state.
const POLL: Duration = Duration::from_millis(100);

/// When `up` builds an image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BuildWhen {
    /// When the service has `build` and its image is missing (the default).
    #[default]
    Missing,
    /// Every service with `build` (`--build`).
    Always,
    /// Never (`--no-build`).
    Never,
}

/// What `up` (and `create`) was asked for.
#[derive(Clone, Debug, Default)]
pub struct UpOptions {
    /// The services named (empty: all).
    pub services: Vec<String>,
    /// `--no-deps`: not their dependencies.
    pub no_deps: bool,
    /// `--force-recreate`.
    pub force_recreate: bool,
    /// `--no-recreate`.
    pub no_recreate: bool,
    /// `--scale SERVICE=N`.
    pub scale: BTreeMap<String, u64>,
    /// `--remove-orphans`.
    pub remove_orphans: bool,
    /// Start the containers (false for `create`).
    pub start: bool,
    /// `--build` / `--no-build`.
    pub build: BuildWhen,
    /// `-V`: recreate anonymous volumes (a recreated container gets new ones).
    pub renew_anon_volumes: bool,
    /// `--pull always|missing|never` over each service's `pull_policy`.
    pub pull: Option<String>,
}

/// What `down` was asked for.
#[derive(Clone, Debug, Default)]
pub struct DownOptions {
    /// `-v`: named volumes declared by the project and anonymous ones.
    pub volumes: bool,
    /// `--rmi local|all`.
    pub rmi: Option<String>,
    /// `--remove-orphans`.
    pub remove_orphans: bool,
    /// `-t`: seconds before SIGKILL.
    pub timeout: Option<u32>,
}

/// A project bound to an engine, reporting to `report`.
pub struct Compose<'a> {
    /// The engine.
    pub engine: &'a Engine,
    /// The project.
    pub loaded: &'a Loaded,
    /// Where progress goes.
    pub report: &'a (dyn Fn(Event) + Sync + 'a),
    /// Opens another engine on the same store, for work done side by side
    /// (independent services, replicas); `None`: one thing at a time.
    pub fork: Option<&'a (dyn Fn() -> Result<Engine> + Sync + 'a)>,
    /// How many at once when side by side (`--parallel`; 0: no limit).
    pub parallel: usize,
}

fn label<'c>(c: &'c Container, key: &str) -> Option<&'c str> {
    c.cfg.labels.get(key).map(String::as_str)
}

/// The service a container belongs to.
pub fn service_of(c: &Container) -> &str {
    label(c, labels::SERVICE).unwrap_or("")
}

/// Its replica number.
pub fn number_of(c: &Container) -> u32 {
    label(c, labels::CONTAINER_NUMBER)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Whether it is a `compose run` container.
pub fn is_oneoff(c: &Container) -> bool {
    label(c, labels::ONEOFF) == Some("True")
}

impl<'a> Compose<'a> {
    /// `f` over `items`, side by side on engines of their own when the
    /// front allows it (and there is more than one), else in order,
    /// stopping at the first failure.
    pub fn par_map<I: Sync, T: Send>(
        &self,
        items: &[I],
        f: impl Fn(&Compose<'_>, &I) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let Some(fork) = self.fork.filter(|_| items.len() > 1) else {
            return items.iter().map(|i| f(self, i)).collect();
        };
        let f = &f;
        let batch = if self.parallel == 0 { items.len() } else { self.parallel };
        let mut results: Vec<Result<T>> = Vec::with_capacity(items.len());
        for chunk in items.chunks(batch.max(1)) {
            std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|item| {
                        scope.spawn(move || {
                            let engine = fork()?;
                            let c = Compose {
                                engine: &engine,
                                loaded: self.loaded,
                                report: self.report,
                                fork: None,
                                parallel: 1,
                            };
                            f(&c, item)
                        })
                    })
                    .collect();
                for h in handles {
                    results.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
                }
            });
        }
        results.into_iter().collect()
    }

    fn emit(&self, kind: &'static str, name: &str, status: &str) {
        (self.report)(Event {
            kind,
            name: name.to_string(),
            status: status.to_string(),
        });
    }

    fn project(&self) -> &crate::model::Project {
        &self.loaded.project
    }

    /// The project's containers (one-off ones with `oneoff`), by service
    /// then number.
    pub fn containers(&self, oneoff: bool) -> Result<Vec<Container>> {
        let f = PsFilter {
            label: vec![format!("{}={}", labels::PROJECT, self.project().name)],
            ..Default::default()
        };
        let mut list: Vec<Container> = self
            .engine
            .ps(true, &f)?
            .into_iter()
            .filter(|c| oneoff || !is_oneoff(c))
            .collect();
        list.sort_by(|a, b| {
            (service_of(a), number_of(a), &a.rec.name).cmp(&(service_of(b), number_of(b), &b.rec.name))
        });
        Ok(list)
    }

    /// The containers of `services` (all services when empty).
    pub fn containers_of(&self, services: &[String], oneoff: bool) -> Result<Vec<Container>> {
        for s in services {
            self.check_service(s)?;
        }
        Ok(self
            .containers(oneoff)?
            .into_iter()
            .filter(|c| services.is_empty() || services.iter().any(|s| s == service_of(c)))
            .collect())
    }

    /// Refuses a service the project does not define, in compose's words.
    pub fn check_service(&self, name: &str) -> Result<()> {
        if self.project().services.contains_key(name) {
            Ok(())
        } else {
            Err(EngineError::not_found(format!("no such service: {name}")))
        }
    }

    /// `selected` (all when empty) and, unless `no_deps`, their dependencies.
    pub fn selection(&self, selected: &[String], no_deps: bool) -> Result<BTreeSet<String>> {
        for s in selected {
            self.check_service(s)?;
        }
        if selected.is_empty() {
            return Ok(self.project().services.keys().cloned().collect());
        }
        if no_deps {
            return Ok(selected.iter().cloned().collect());
        }
        Ok(graph::with_dependencies(self.project(), selected)
            .into_iter()
            .filter(|s| self.project().services.contains_key(s))
            .collect())
    }

    /// The ID of the image service `name` runs, when the store has it.
    pub fn image_id(&self, name: &str) -> Option<String> {
        let s = self.project().services.get(name)?;
        let image = identity::image_name(&self.project().name, name, s);
        let v = self.engine.image_inspect(&image).ok()?;
        v["Id"].as_str().map(str::to_string)
    }

    /// The services of `selection` whose image `up` must build first.
    pub fn to_build(&self, selection: &BTreeSet<String>, when: BuildWhen) -> Vec<String> {
        selection
            .iter()
            .filter(|n| self.project().services[*n].build.is_some())
            .filter(|n| match when {
                BuildWhen::Always => true,
                BuildWhen::Never => false,
                BuildWhen::Missing => self.image_id(n).is_none(),
            })
            .cloned()
            .collect()
    }

    /// Pulls the images of `services` that are not in the store (and have
    /// no `build`, or say `pull_policy: always`), before anything is created.
    /// `policy` (`up --pull`) stands for every service's `pull_policy`; with
    /// `never`, a missing image is an error here, before anything is made.
    pub fn pull_missing(&self, services: &BTreeSet<String>, policy: Option<&str>) -> Result<()> {
        for name in services {
            let s = &self.project().services[name];
            let Some(image) = &s.image else { continue };
            let policy = policy.or(s.pull_policy.as_deref());
            let always = matches!(policy, Some("always" | "refresh"));
            let never = matches!(policy, Some("never") | Some("build"));
            if policy == Some("never") && s.build.is_none() && self.image_id(name).is_none() {
                return Err(EngineError::not_found(format!("No such image: {image}")));
            }
            if never || (s.build.is_some() && !always) || (!always && self.image_id(name).is_some()) {
                continue;
            }
            self.emit("Service", name, "Pulling");
            let opts = berth_engine::registry::PullOptions {
                platform: s.platform.clone(),
                ..Default::default()
            };
            self.engine
                .pull(image, &opts, &berth_engine::progress::Progress::none())?;
            self.emit("Service", name, "Pulled");
        }
        Ok(())
    }

    /// Creates the project's networks that `services` join and are missing.
    pub fn ensure_networks(&self, services: &BTreeSet<String>) -> Result<()> {
        let mut keys = BTreeSet::new();
        for s in services {
            let svc = &self.project().services[s];
            if svc.network_mode.is_none() {
                keys.extend(svc.networks.keys().cloned());
            }
        }
        for key in keys {
            let Some(net) = self.project().networks.get(&key) else {
                continue;
            };
            let name = network_name(self.loaded, &key);
            if self.engine.network(&name).is_ok() {
                continue;
            }
            if net.external {
                return Err(EngineError::not_found(format!(
                    "network {name} declared as external, but could not be found"
                )));
            }
            // One pool per family; the IPv6 one with `enable_ipv6` only (as Docker).
            let ipv6 = net.enable_ipv6.unwrap_or(false);
            let v6 = |p: &&crate::model::IpamPool| p.subnet.as_deref().is_some_and(berth_net::ipam::is_v6);
            let pools = net.ipam.as_ref().map(|i| i.config.as_slice()).unwrap_or_default();
            let pool = pools.iter().find(|p| !v6(p));
            let pool6 = pools.iter().find(v6).filter(|_| ipv6);
            let mut lbls = net.labels.clone();
            lbls.extend(resource_labels(&self.project().name, labels::NETWORK, &key));
            let req = berth_net::bridge::NetworkRequest {
                name: name.clone(),
                driver: net.driver.clone(),
                subnet: pool.and_then(|p| p.subnet.clone()),
                gateway: pool.and_then(|p| p.gateway.clone()),
                ip_range: pool.and_then(|p| p.ip_range.clone()),
                internal: net.internal,
                labels: lbls,
                options: net.driver_opts.clone(),
                ipv6,
                subnet6: pool6.and_then(|p| p.subnet.clone()),
                gateway6: pool6.and_then(|p| p.gateway.clone()),
                ip_range6: pool6.and_then(|p| p.ip_range.clone()),
            };
            self.emit("Network", &name, "Creating");
            self.engine.network_create(&req)?;
            self.emit("Network", &name, "Created");
        }
        Ok(())
    }

    /// Creates the project's named volumes that `services` mount and are missing.
    pub fn ensure_volumes(&self, services: &BTreeSet<String>) -> Result<()> {
        let mut keys = BTreeSet::new();
        for s in services {
            for v in &self.project().services[s].volumes {
                if v.kind == "volume" {
                    if let Some(src) = &v.source {
                        keys.insert(src.clone());
                    }
                }
            }
        }
        for key in keys {
            let Some(vol) = self.project().volumes.get(&key) else {
                continue;
            };
            let name = volume_name(self.loaded, &key);
            if self.engine.volume_inspect(&name).is_ok() {
                continue;
            }
            if vol.external {
                return Err(EngineError::not_found(format!("external volume \"{name}\" not found")));
            }
            let mut lbls = vol.labels.clone();
            lbls.extend(resource_labels(&self.project().name, labels::VOLUME, &key));
            self.emit("Volume", &name, "Creating");
            self.engine.volume_create(&VolumeCreate {
                name: Some(name.clone()),
                driver: vol.driver.clone(),
                options: vol.driver_opts.clone(),
                labels: lbls,
            })?;
            self.emit("Volume", &name, "Created");
        }
        Ok(())
    }

    /// Containers of the project whose service it no longer defines.
    pub fn orphans(&self) -> Result<Vec<Container>> {
        Ok(self
            .containers(false)?
            .into_iter()
            .filter(|c| !self.project().services.contains_key(service_of(c)))
            .collect())
    }

    /// `up`/`create`: networks, volumes, then each service's containers in
    /// dependency order, each level after its dependencies are ready.
    /// Returns the warnings compose prints (orphans).
    pub fn up(&self, o: &UpOptions) -> Result<Vec<String>> {
        let selection = self.selection(&o.services, o.no_deps)?;
        let mut warnings = Vec::new();
        let orphans = self.orphans()?;
        if !orphans.is_empty() {
            if o.remove_orphans {
                for c in &orphans {
                    self.remove_one(c, true, None, false)?;
                }
            } else {
                let names: Vec<&str> = orphans.iter().map(|c| c.rec.name.as_str()).collect();
                warnings.push(format!(
                    "Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
                    names.join(" ")
                ));
            }
        }
        self.pull_missing(&selection, o.pull.as_deref())?;
        self.ensure_networks(&selection)?;
        self.ensure_volumes(&selection)?;
        // Services whose containers were (re)created: dependents that ask
        // for it (`depends_on: {restart: true}`) are restarted after them.
        let mut updated = BTreeSet::new();
        for level in graph::start_levels(self.project()) {
            // A level's services depend only on earlier levels: side by side.
            let names: Vec<String> = level.into_iter().filter(|n| selection.contains(n)).collect();
            let changed = self.par_map(&names, |c, name| {
                if o.start {
                    c.wait_dependencies(name, &selection)?;
                }
                let deps_updated = c.project().services[name]
                    .depends_on
                    .iter()
                    .any(|(d, on)| on.restart && updated.contains(d));
                c.converge(name, o, deps_updated)
            })?;
            for (name, changed) in names.into_iter().zip(changed) {
                if changed {
                    updated.insert(name);
                }
            }
        }
        Ok(warnings)
    }

    /// Waits until every dependency of `name` in `selection` meets its condition.
    pub fn wait_dependencies(&self, name: &str, selection: &BTreeSet<String>) -> Result<()> {
        let svc = &self.project().services[name];
        for (dep, d) in &svc.depends_on {
            if !selection.contains(dep) || !self.project().services.contains_key(dep) {
                continue;
            }
            let waited = self.wait_dependency(dep, d);
            match waited {
                // `required: false`: compose warns and starts the service anyway.
                Err(e) if !d.required => {
                    self.emit("Warning", name, &format!("optional dependency {dep:?} failed: {e}"))
                }
                r => r?,
            }
        }
        Ok(())
    }

    /// Waits until `dep`'s containers meet condition `d`.
    fn wait_dependency(&self, dep: &str, d: &crate::model::DependsOn) -> Result<()> {
        for c in self.containers_of(&[dep.to_string()], false)? {
            match d.condition {
                Condition::ServiceStarted => {}
                Condition::ServiceHealthy => {
                    self.emit("Container", &c.rec.name, "Waiting");
                    self.wait_healthy(&c.rec.id, &c.rec.name)?;
                    self.emit("Container", &c.rec.name, "Healthy");
                }
                Condition::ServiceCompletedSuccessfully => {
                    self.emit("Container", &c.rec.name, "Waiting");
                    let code = self.wait_exit(&c.rec.id)?;
                    if code != 0 {
                        return Err(EngineError::exit(
                            1,
                            format!("service {dep:?} didn't complete successfully: exit {code}"),
                        ));
                    }
                    self.emit("Container", &c.rec.name, "Exited");
                }
            }
        }
        Ok(())
    }

    /// Blocks until the container's healthcheck passes; compose's error
    /// when it fails or the container stops.
    pub fn wait_healthy(&self, id: &str, name: &str) -> Result<()> {
        loop {
            let c = self.engine.container(id)?;
            match c.state.health.as_ref().map(|h| h.status.as_str()) {
                Some("healthy") => return Ok(()),
                Some("unhealthy") => {
                    return Err(EngineError::exit(
                        1,
                        format!("dependency failed to start: container {name} is unhealthy"),
                    ))
                }
                None if c.cfg.healthcheck.is_none() => {
                    return Err(EngineError::exit(
                        1,
                        format!("container {name} has no healthcheck configured"),
                    ))
                }
                _ => {}
            }
            if !c.state.is_running() {
                return Err(EngineError::exit(
                    1,
                    format!(
                        "dependency failed to start: container {name} exited ({})",
                        c.state.exit_code
                    ),
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Blocks until the container is not running; its exit code.
    pub fn wait_exit(&self, id: &str) -> Result<i32> {
        self.engine
            .wait_for_condition(id, berth_engine::wait::WaitCondition::NotRunning, &|| false)
    }

    /// Makes service `name`'s containers match the project; a running
    /// container left as it is is restarted when `restart` (a dependency
    /// was updated). Whether any container was created or recreated.
    fn converge(&self, name: &str, o: &UpOptions, restart: bool) -> Result<bool> {
        let mut changed = false;
        let svc = &self.project().services[name];
        let want = o.scale.get(name).copied().unwrap_or_else(|| svc.replicas()) as u32;
        if want > 1 && svc.container_name.is_some() {
            return Err(EngineError::invalid_value(format!(
                "services.{name}: can't set container_name and {name} as container name must be unique"
            )));
        }
        let hash = config_hash(svc);
        let image_id = self.image_id(name);
        let existing = self.containers_of(&[name.to_string()], false)?;
        let mut numbers = BTreeSet::new();
        for c in &existing {
            let n = number_of(c);
            if n > want || !numbers.insert(n) {
                // Scaled away: its anonymous volumes would belong to no one.
                self.remove_one(c, true, None, true)?;
                continue;
            }
            let stale_hash = label(c, labels::CONFIG_HASH) != Some(hash.as_str());
            let stale_image = match (&image_id, label(c, labels::IMAGE)) {
                (Some(now), Some(then)) => now != then,
                _ => false,
            };
            if o.force_recreate || (!o.no_recreate && (stale_hash || stale_image)) {
                self.emit("Container", &c.rec.name, "Recreate");
                // The new container keeps the old one's anonymous volumes
                // (an image's VOLUME data survives a recreate) unless -V.
                let keep = if o.renew_anon_volumes {
                    Vec::new()
                } else {
                    self.anonymous_volumes(c)?
                };
                self.stop_one(c, None)?;
                self.remove_container(c, o.renew_anon_volumes)?;
                let id = self.create_one_keeping(name, n, image_id.clone(), &keep)?;
                self.emit("Container", &c.rec.name, "Recreated");
                changed = true;
                if o.start {
                    self.start_id(&id, &c.rec.name)?;
                }
            } else if o.start && !c.state.is_running() {
                self.start_id(&c.rec.id, &c.rec.name)?;
            } else if o.start && restart {
                self.emit("Container", &c.rec.name, "Restarting");
                self.engine.restart_container(&c.rec.id, None, None)?;
                self.emit("Container", &c.rec.name, "Restarted");
            } else {
                self.emit("Container", &c.rec.name, "Running");
            }
        }
        let missing: Vec<u32> = (1..=want).filter(|n| !numbers.contains(n)).collect();
        self.par_map(&missing, |c, &n| {
            let cname = identity::container_name(&c.project().name, name, svc, n);
            c.emit("Container", &cname, "Creating");
            let id = c.create_one(name, n, image_id.clone())?;
            c.emit("Container", &cname, "Created");
            if o.start {
                c.start_id(&id, &cname)?;
            }
            Ok(())
        })?;
        Ok(changed || !missing.is_empty())
    }

    /// The anonymous volumes a container mounts: (volume name, target).
    fn anonymous_volumes(&self, c: &Container) -> Result<Vec<(String, String)>> {
        let v = self.engine.inspect_container(&c.rec.id, false)?;
        let mut out = Vec::new();
        for m in v["Mounts"].as_array().into_iter().flatten() {
            let (Some("volume"), Some(name), Some(target)) =
                (m["Type"].as_str(), m["Name"].as_str(), m["Destination"].as_str())
            else {
                continue;
            };
            let anonymous = self
                .engine
                .volume_inspect(name)
                .ok()
                .is_some_and(|vol| vol["Labels"].get(ANONYMOUS_LABEL).is_some());
            if anonymous {
                out.push((name.to_string(), target.to_string()));
            }
        }
        Ok(out)
    }

    fn create_one(&self, name: &str, number: u32, image_id: Option<String>) -> Result<String> {
        self.create_one_keeping(name, number, image_id, &[])
    }

    /// Creates container `number` of `name`, mounting `keep` (volume,
    /// target) where the service mounts nothing else.
    fn create_one_keeping(
        &self,
        name: &str,
        number: u32,
        image_id: Option<String>,
        keep: &[(String, String)],
    ) -> Result<String> {
        let mut spec = convert::container_spec(
            self.loaded,
            name,
            &Instance {
                number,
                oneoff: None,
                image_id,
            },
        )?;
        if spec.pull == berth_engine::spec::PullPolicy::Always {
            // `pull_policy: always` was honoured by `pull_missing`, once per up.
            spec.pull = berth_engine::spec::PullPolicy::Missing;
        }
        for (volume, target) in keep {
            let kept = berth_engine::spec::MountSource::Volume {
                name: Some(volume.clone()),
                options: Default::default(),
                nocopy: false,
            };
            if let Some(m) = spec.mounts.iter_mut().find(|m| &m.target == target) {
                if matches!(&m.source, berth_engine::spec::MountSource::Volume { name: None, .. }) {
                    m.source = kept;
                }
            } else {
                spec.mounts.push(berth_engine::spec::Mount {
                    target: target.clone(),
                    source: kept,
                    readonly: false,
                    propagation: String::new(),
                    origin: berth_engine::spec::MountOrigin::Mount,
                });
            }
        }
        let created = self.engine.create_container_pulling(
            &spec,
            berth_engine::containers::create::CreateOptions {
                start_next: true,
                ..Default::default()
            },
            &berth_engine::progress::Progress::none(),
        )?;
        Ok(created.id)
    }

    fn start_id(&self, id: &str, name: &str) -> Result<()> {
        self.emit("Container", name, "Starting");
        self.engine.start_detached(id, None)?;
        self.emit("Container", name, "Started");
        Ok(())
    }

    /// The container `compose run` makes: a one-off of `service`, its
    /// dependencies started first unless `no_deps`; returns its ID and name.
    pub fn create_oneoff(
        &self,
        service: &str,
        no_deps: bool,
        adjust: &dyn Fn(&mut berth_engine::spec::ContainerSpec) -> Result<()>,
    ) -> Result<(String, String)> {
        self.check_service(service)?;
        if !no_deps {
            let deps: Vec<String> = self.project().services[service].depends_on.keys().cloned().collect();
            if !deps.is_empty() {
                self.up(&UpOptions {
                    services: deps,
                    start: true,
                    no_recreate: false,
                    ..Default::default()
                })?;
                let sel = self.selection(&[service.to_string()], false)?;
                self.wait_dependencies(service, &sel)?;
            }
        }
        let sel: BTreeSet<String> = [service.to_string()].into();
        self.ensure_networks(&sel)?;
        self.ensure_volumes(&sel)?;
        let id = berth_engine::containers::random_hex(32);
        let name = identity::oneoff_container_name(&self.project().name, service, &id);
        let mut spec = convert::container_spec(
            self.loaded,
            service,
            &Instance {
                number: 1,
                oneoff: Some(name.clone()),
                image_id: self.image_id(service),
            },
        )?;
        adjust(&mut spec)?;
        let created = self.engine.create_container_pulling(
            &spec,
            berth_engine::containers::create::CreateOptions {
                start_next: true,
                ..Default::default()
            },
            &berth_engine::progress::Progress::none(),
        )?;
        Ok((created.id, name))
    }

    /// Stops one container (reported).
    pub fn stop_one(&self, c: &Container, timeout: Option<u32>) -> Result<()> {
        if !c.state.is_running() {
            return Ok(());
        }
        self.emit("Container", &c.rec.name, "Stopping");
        self.engine.stop_container(&c.rec.id, timeout)?;
        self.emit("Container", &c.rec.name, "Stopped");
        Ok(())
    }

    /// Removes a container; with `volumes`, every anonymous volume it
    /// mounts, those it was given by name too (a recreated container
    /// inherits its predecessor's, which the engine's `rm -v` keeps, as
    /// Docker's does).
    fn remove_container(&self, c: &Container, volumes: bool) -> Result<()> {
        let anonymous = if volumes {
            self.anonymous_volumes(c).unwrap_or_default()
        } else {
            Vec::new()
        };
        match self.engine.remove_container(&c.rec.id, true, volumes) {
            Ok(()) => {}
            // A --rm container may go by itself meanwhile.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        for (name, _) in anonymous {
            let left = self.engine.volume_inspect(&name).is_ok();
            if left && self.engine.volume_users(&name).is_ok_and(|u| u.is_empty()) {
                self.engine.volume_remove(&name, false)?;
            }
        }
        Ok(())
    }

    fn remove_one(&self, c: &Container, stop: bool, timeout: Option<u32>, volumes: bool) -> Result<()> {
        if stop {
            self.stop_one(c, timeout)?;
        }
        self.emit("Container", &c.rec.name, "Removing");
        self.remove_container(c, volumes)?;
        self.emit("Container", &c.rec.name, "Removed");
        Ok(())
    }

    /// `stop`: in reverse dependency order.
    pub fn stop(&self, services: &[String], timeout: Option<u32>) -> Result<()> {
        let list = self.containers_of(services, false)?;
        for level in graph::stop_levels(self.project()) {
            let in_level: Vec<&Container> = list
                .iter()
                .filter(|c| level.iter().any(|s| s == service_of(c)))
                .collect();
            self.par_map(&in_level, |c, ctr| c.stop_one(ctr, timeout))?;
        }
        Ok(())
    }

    /// `start`: in dependency order, waiting for conditions.
    pub fn start(&self, services: &[String]) -> Result<()> {
        let sel = self.selection(services, true)?;
        let list = self.containers_of(services, false)?;
        if list.is_empty() {
            return Err(EngineError::not_found(
                "no container found for the project: run `compose up` first",
            ));
        }
        for level in graph::start_levels(self.project()) {
            for name in level.iter().filter(|n| sel.contains(*n)) {
                self.wait_dependencies(name, &sel)?;
                for c in list.iter().filter(|c| service_of(c) == name) {
                    if !c.state.is_running() {
                        self.start_id(&c.rec.id, &c.rec.name)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// `restart`.
    pub fn restart(&self, services: &[String], timeout: Option<u32>) -> Result<()> {
        for c in self.containers_of(services, false)? {
            self.emit("Container", &c.rec.name, "Restarting");
            self.engine.restart_container(&c.rec.id, timeout, None)?;
            self.emit("Container", &c.rec.name, "Started");
        }
        Ok(())
    }

    /// `kill -s SIGNAL`.
    pub fn kill(&self, services: &[String], signal: &str) -> Result<()> {
        for c in self.containers_of(services, false)? {
            if c.state.is_running() {
                self.emit("Container", &c.rec.name, "Killing");
                self.engine.kill_container(&c.rec.id, signal)?;
                self.emit("Container", &c.rec.name, "Killed");
            }
        }
        Ok(())
    }

    /// `pause` / `unpause`.
    pub fn pause(&self, services: &[String], pause: bool) -> Result<()> {
        for c in self.containers_of(services, false)? {
            if pause {
                self.engine.pause_container(&c.rec.id)?;
                self.emit("Container", &c.rec.name, "Paused");
            } else {
                self.engine.unpause_container(&c.rec.id)?;
                self.emit("Container", &c.rec.name, "Unpaused");
            }
        }
        Ok(())
    }

    /// `rm`: the stopped containers of `services` (with `stop`, running
    /// ones after stopping them); their anonymous volumes with `volumes`.
    pub fn rm(&self, services: &[String], stop: bool, volumes: bool) -> Result<usize> {
        let mut n = 0;
        for c in self.containers_of(services, false)? {
            if c.state.is_running() && !stop {
                continue;
            }
            self.remove_one(&c, stop, None, volumes)?;
            n += 1;
        }
        Ok(n)
    }

    /// `down`: containers (dependents first), then networks, then with
    /// `-v` volumes, then with `--rmi` images.
    pub fn down(&self, o: &DownOptions) -> Result<()> {
        let mut list = self.containers(true)?;
        // Named by -p alone (no file): every container of the project goes.
        let by_name = self.loaded.config_files.is_empty();
        if !o.remove_orphans && !by_name {
            list.retain(|c| self.project().services.contains_key(service_of(c)) || is_oneoff(c));
        }
        // Dependents first; one-offs and orphans before everything.
        let levels = graph::stop_levels(self.project());
        let rank = |c: &Container| {
            if is_oneoff(c) {
                return 0;
            }
            levels
                .iter()
                .position(|l| l.iter().any(|s| s == service_of(c)))
                .map(|p| p + 1)
                .unwrap_or(0)
        };
        let mut groups: BTreeMap<usize, Vec<&Container>> = BTreeMap::new();
        for c in &list {
            groups.entry(rank(c)).or_default().push(c);
        }
        for group in groups.values() {
            self.par_map(group, |c, ctr| c.remove_one(ctr, true, o.timeout, o.volumes))?;
        }
        // The project's networks: those it declares, and any other that
        // carries its label (a network dropped from the file, or every one
        // when the project was named with -p and no file).
        let project_label = format!("{}={}", labels::PROJECT, self.project().name);
        let mut networks: BTreeSet<String> = self
            .project()
            .networks
            .iter()
            .filter(|(_, n)| !n.external)
            .map(|(k, _)| network_name(self.loaded, k))
            .collect();
        let labelled = berth_engine::networks::NetworkFilters {
            labels: vec![project_label.clone()],
            ..Default::default()
        };
        networks.extend(self.engine.network_list(&labelled)?.into_iter().map(|n| n.name));
        for name in networks {
            match self.engine.network(&name) {
                Ok(rec) if rec.labels.get(labels::PROJECT) == Some(&self.project().name) => {
                    self.emit("Network", &name, "Removing");
                    self.engine.network_remove(&name)?;
                    self.emit("Network", &name, "Removed");
                }
                _ => {}
            }
        }
        if o.volumes {
            let mut volumes: BTreeSet<String> = self
                .project()
                .volumes
                .iter()
                .filter(|(_, v)| !v.external)
                .map(|(k, _)| volume_name(self.loaded, k))
                .collect();
            let labelled = berth_engine::volumes::VolumeFilters {
                labels: vec![project_label],
                ..Default::default()
            };
            volumes.extend(
                self.engine
                    .volume_list(&labelled)?
                    .into_iter()
                    .map(|v| v.volume.record.name),
            );
            for name in volumes {
                if self.engine.volume_inspect(&name).is_ok() {
                    self.emit("Volume", &name, "Removing");
                    self.engine.volume_remove(&name, false)?;
                    self.emit("Volume", &name, "Removed");
                }
            }
        }
        if let Some(which) = o.rmi.as_deref() {
            let mut names: BTreeSet<String> = BTreeSet::new();
            for (name, svc) in &self.project().services {
                let local = svc.image.is_none();
                if which == "all" || local {
                    names.insert(identity::image_name(&self.project().name, name, svc));
                }
            }
            for image in names {
                if self.engine.image_inspect(&image).is_ok() {
                    self.emit("Image", &image, "Removing");
                    match self.engine.remove_image(&image, false, true) {
                        Ok(_) => self.emit("Image", &image, "Removed"),
                        Err(e) if e.kind() == ErrorKind::Conflict => self.emit("Image", &image, "Skipped"),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits until every container of `services` runs (and is healthy when
    /// it has a healthcheck): `up --wait`.
    pub fn wait_running(&self, services: &[String]) -> Result<()> {
        for c in self.containers_of(services, false)? {
            if c.cfg.healthcheck.is_some() {
                self.emit("Container", &c.rec.name, "Waiting");
                self.wait_healthy(&c.rec.id, &c.rec.name)?;
                self.emit("Container", &c.rec.name, "Healthy");
            } else if !c.state.is_running() {
                return Err(EngineError::exit(
                    1,
                    format!("container {} exited ({})", c.rec.name, c.state.exit_code),
                ));
            }
        }
        Ok(())
    }
}
