//! The packet path's own dependencies stay the ones a forwarder needs:
//! system configuration (ethtool, rtnetlink) lives in `host`, test traffic
//! in `synth`, and etherparse is only the tests' independent oracle.

/// The names under `[dependencies]` of this crate's manifest.
fn runtime_dependencies() -> Vec<String> {
    let manifest: toml::Table = include_str!("../Cargo.toml")
        .parse()
        .expect("the manifest is TOML");
    manifest["dependencies"]
        .as_table()
        .expect("a [dependencies] table")
        .keys()
        .cloned()
        .collect()
}

#[test]
fn the_dataplane_forwards_without_etherparse_synth_or_host() {
    let dependencies = runtime_dependencies();
    for absent in ["etherparse", "synth", "host"] {
        assert!(
            !dependencies.iter().any(|d| d == absent),
            "{absent} is a runtime dependency of the dataplane: {dependencies:?}"
        );
    }
    assert!(dependencies.iter().any(|d| d == "libc"), "{dependencies:?}");
}
