//! The BuildKit platform ARGs and `FROM --platform`, through real builds
//! into a fresh store (metadata steps only, so no container and no root):
//! `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `TARGETVARIANT`,
//! `BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`, `BUILDVARIANT` are in the global
//! scope of FROM lines, reach a stage only through its ARG, and the built
//! image says it is for the target platform.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use berth_build::executor::{self, BaseFetcher, BuildError, BuildOptions, BuildOutcome, Progress, ProgressMode};
use berth_store::{ImageConfig, Store};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    ctx: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        Fixture {
            _dir: dir,
            store,
            ctx: tempfile::tempdir().unwrap(),
        }
    }

    fn opts(&self, dockerfile: &str, platform: Option<&str>) -> BuildOptions {
        BuildOptions {
            context_dir: self.ctx.path().to_path_buf(),
            dockerfile_text: dockerfile.to_string(),
            dockerfile_name: "Dockerfile".into(),
            dockerfile_path: self.ctx.path().join("Dockerfile"),
            platform: platform.map(String::from),
            network: "default".into(),
            ..Default::default()
        }
    }

    fn build_with(&self, opts: &BuildOptions) -> Result<BuildOutcome, BuildError> {
        let mut progress = Progress::new(Box::new(std::io::sink()), ProgressMode::Quiet);
        executor::build(&self.store, opts, &mut progress)
    }

    fn build(&self, dockerfile: &str, platform: Option<&str>) -> ImageConfig {
        let out = self
            .build_with(&self.opts(dockerfile, platform))
            .unwrap_or_else(|e| panic!("{e}"));
        self.store.image_config(&out.id).unwrap()
    }

    /// A base image of `platform` (no layers) tagged `name`.
    fn base(&self, name: &str, platform: &str) {
        let mut o = self.opts(&format!("FROM scratch\nLABEL base={name}\n"), Some(platform));
        o.tags = vec![format!("docker.io/library/{name}:latest")];
        self.build_with(&o).unwrap();
    }
}

/// An image a build asked the fetcher for, and the platform it asked in.
type Fetched = (String, Option<String>);

fn labels(c: &ImageConfig) -> BTreeMap<String, String> {
    c.config.labels.clone().unwrap_or_default()
}

fn host() -> &'static str {
    ImageConfig::host_architecture()
}

#[test]
fn a_stage_sees_the_platform_args_it_declares_with_buildkits_values() {
    let f = Fixture::new();
    let c = f.build(
        "FROM scratch\n\
         ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT\n\
         ARG BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT\n\
         LABEL tp=$TARGETPLATFORM tos=$TARGETOS tarch=$TARGETARCH tvar=x$TARGETVARIANT \
               bp=$BUILDPLATFORM bos=$BUILDOS barch=$BUILDARCH bvar=x$BUILDVARIANT\n",
        Some("linux/arm/v7"),
    );
    let l = labels(&c);
    assert_eq!(l["tp"], "linux/arm/v7");
    assert_eq!(
        (l["tos"].as_str(), l["tarch"].as_str(), l["tvar"].as_str()),
        ("linux", "arm", "xv7")
    );
    assert_eq!(l["bp"], format!("linux/{}", host()));
    assert_eq!(
        (l["bos"].as_str(), l["barch"].as_str(), l["bvar"].as_str()),
        ("linux", host(), "x")
    );
    // arm64's v8 is implied, so TARGETVARIANT is empty, as in BuildKit.
    let l = labels(&f.build(
        "FROM scratch\nARG TARGETPLATFORM TARGETVARIANT\nLABEL tp=$TARGETPLATFORM tvar=x$TARGETVARIANT\n",
        Some("linux/arm64/v8"),
    ));
    assert_eq!((l["tp"].as_str(), l["tvar"].as_str()), ("linux/arm64", "x"));
}

#[test]
fn a_stage_that_does_not_declare_them_does_not_see_them() {
    let f = Fixture::new();
    let l = labels(&f.build(
        "FROM scratch\nLABEL arch=x$TARGETARCH build=x$BUILDARCH\n",
        Some("linux/arm64"),
    ));
    assert_eq!((l["arch"].as_str(), l["build"].as_str()), ("x", "x"));
    // Declared in one stage: not in the next.
    let l = labels(&f.build(
        "FROM scratch AS a\nARG TARGETARCH\nLABEL a=$TARGETARCH\nFROM a\nLABEL b=x$TARGETARCH\n",
        Some("linux/arm64"),
    ));
    assert_eq!((l["a"].as_str(), l["b"].as_str()), ("arm64", "x"));
}

#[test]
fn from_lines_see_them_without_declaring_them() {
    let f = Fixture::new();
    let df = "FROM scratch AS base-amd64\nLABEL which=amd64\n\
              FROM scratch AS base-arm64\nLABEL which=arm64\n\
              FROM base-$TARGETARCH\n";
    assert_eq!(labels(&f.build(df, Some("linux/arm64")))["which"], "arm64");
    assert_eq!(labels(&f.build(df, Some("linux/amd64")))["which"], "amd64");
    // Through a global ARG's default too.
    let df2 = format!("ARG BASE=base-$TARGETARCH\n{df}").replace("FROM base-$TARGETARCH", "FROM $BASE");
    assert_eq!(labels(&f.build(&df2, Some("linux/arm64")))["which"], "arm64");
}

#[test]
fn a_default_or_a_build_arg_replaces_the_predefined_value() {
    let f = Fixture::new();
    let l = labels(&f.build(
        "FROM scratch\nARG TARGETARCH=mine\nLABEL a=$TARGETARCH\n",
        Some("linux/arm64"),
    ));
    assert_eq!(l["a"], "mine");
    let mut o = f.opts(
        "FROM scratch AS base-other\nLABEL which=other\nFROM base-$TARGETARCH\nARG TARGETARCH\nLABEL a=$TARGETARCH\n",
        Some("linux/arm64"),
    );
    o.build_args.insert("TARGETARCH".into(), "other".into());
    let out = f.build_with(&o).unwrap();
    let l = labels(&f.store.image_config(&out.id).unwrap());
    assert_eq!((l["which"].as_str(), l["a"].as_str()), ("other", "other"));
    assert!(out.unused_args.is_empty(), "{:?}", out.unused_args);
}

#[test]
fn the_built_image_is_for_the_target_platform() {
    let f = Fixture::new();
    let c = f.build("FROM scratch\nLABEL a=1\n", Some("linux/arm/v7"));
    assert_eq!(
        (c.os.as_str(), c.architecture.as_str(), c.variant.as_deref()),
        ("linux", "arm", Some("v7"))
    );
    let c = f.build("FROM scratch\nLABEL a=1\n", None);
    assert_eq!(
        (c.architecture.as_str(), c.variant.as_deref()),
        (host(), None),
        "this host by default"
    );
    // The same steps on scratch for another platform are other images, not
    // the first one's cache.
    let c = f.build("FROM scratch\nLABEL a=1\n", Some("linux/s390x"));
    assert_eq!(c.architecture, "s390x");
}

#[test]
fn without_platform_a_stage_keeps_its_base_images_platform() {
    let f = Fixture::new();
    f.base("armbase", "linux/arm64");
    let c = f.build("FROM armbase\nARG TARGETARCH\nLABEL t=$TARGETARCH\n", None);
    assert_eq!(c.architecture, "arm64");
    assert_eq!(labels(&c)["t"], host(), "TARGETARCH stays the build's target");
}

#[test]
fn from_platform_buildplatform_stage_is_native_and_fetched_as_such() {
    let f = Fixture::new();
    f.base("tools", &format!("linux/{}", host()));
    f.base("runtime", "linux/arm64");
    let asked: Arc<Mutex<Vec<Fetched>>> = Arc::default();
    let seen = asked.clone();
    let mut o = f.opts(
        "FROM --platform=$BUILDPLATFORM tools AS build\n\
         ARG BUILDARCH TARGETARCH\n\
         LABEL cross=$BUILDARCH/$TARGETARCH\n\
         FROM build AS more\n\
         LABEL more=1\n\
         FROM runtime\n\
         LABEL final=1\n",
        Some("linux/arm64"),
    );
    o.pull = true;
    o.fetch_base = Some(BaseFetcher(Arc::new(move |image, platform| {
        seen.lock()
            .unwrap()
            .push((image.to_string(), platform.map(String::from)));
        Ok(String::new())
    })));
    o.target = Some("more".into());
    let out = f.build_with(&o).unwrap();
    // The base of the $BUILDPLATFORM stage is asked for in this host's
    // platform: the stage needs no emulation.
    assert_eq!(
        asked.lock().unwrap().clone(),
        [("tools".to_string(), Some(format!("linux/{}", host())))]
    );
    // Its steps (and a stage FROM it) are native images…
    let steps: Vec<ImageConfig> = out
        .steps
        .iter()
        .map(|s| f.store.image_config(&s.image).unwrap())
        .collect();
    assert!(steps.iter().all(|c| c.architecture == host()), "{steps:?}");
    assert!(steps
        .iter()
        .any(|c| labels(c).get("cross") == Some(&format!("{}/arm64", host()))));
    // …and the result says it is for the target, as BuildKit writes it.
    let c = f.store.image_config(&out.id).unwrap();
    assert_eq!(c.architecture, "arm64");
    assert_eq!(labels(&c)["more"], "1");
    assert_eq!(
        c.history.len(),
        steps.last().unwrap().history.len(),
        "no step of its own"
    );

    // The whole file: the final stage's base is fetched for the target.
    asked.lock().unwrap().clear();
    o.target = None;
    f.build_with(&o).unwrap();
    assert!(asked
        .lock()
        .unwrap()
        .contains(&("runtime".to_string(), Some("linux/arm64".to_string()))));
}

#[test]
fn a_bad_platform_is_refused_with_its_place() {
    let f = Fixture::new();
    let e = f
        .build_with(&f.opts("FROM --platform=$NOPE scratch\n", None))
        .unwrap_err();
    assert!(
        e.to_string().contains("empty platform value from expression $NOPE"),
        "{e}"
    );
    assert_eq!(e.line, 1);
    let e = f.build_with(&f.opts("FROM scratch\n", Some("linux/"))).unwrap_err();
    assert!(e.to_string().contains("invalid platform"), "{e}");
    let e = f
        .build_with(&f.opts("FROM scratch\n", Some("linux/amd64,linux/arm64")))
        .unwrap_err();
    assert!(e.to_string().contains("one platform at a time"), "{e}");
}

#[test]
fn a_run_step_of_a_platform_nothing_can_run_says_so_before_starting_anything() {
    let f = Fixture::new();
    f.base("sparcbase", "linux/sparc64");
    let e = f.build_with(&f.opts("FROM sparcbase\nRUN true\n", None)).unwrap_err();
    assert_eq!(e.line, 2);
    assert!(
        e.to_string().starts_with(&format!(
            "image is linux/sparc64, this host is linux/{} and has no binfmt handler for it",
            host()
        )),
        "{e}"
    );
}
