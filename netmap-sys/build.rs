//! Finds netmap's headers and, with the `bindgen` feature, generates the
//! structure declarations from them; otherwise the crate uses its
//! checked-in declarations (`src/abi.rs`). Never downloads anything.
//!
//! Sets `NETMAP_SYS_BINDINGS` (what was compiled in) for `BINDINGS_SOURCE`,
//! and the `netmap_sys_bindgen` cfg when the bindings were generated.

use std::env;
use std::path::{Path, PathBuf};

/// The header every search looks for, relative to an include directory.
const HEADER: &str = "net/netmap.h";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(netmap_sys_bindgen)");
    println!("cargo::rerun-if-env-changed=NETMAP_INCLUDE_DIR");
    println!("cargo::rerun-if-changed=build.rs");

    let include_dir = find_include_dir();
    if let Some(dir) = &include_dir {
        println!(
            "cargo::rerun-if-changed={}",
            dir.join(HEADER).to_string_lossy()
        );
    }
    let source = match include_dir {
        Some(dir) if cfg!(feature = "bindgen") => generate(&dir),
        Some(dir) => {
            println!(
                "cargo::warning=netmap headers found in {} but the `bindgen` feature is off: \
                 using the checked-in declarations (build with --features bindgen to generate them)",
                dir.display()
            );
            "checked-in".to_owned()
        }
        None => "checked-in".to_owned(),
    };
    println!("cargo::rustc-env=NETMAP_SYS_BINDINGS={source}");
}

/// The directory holding `net/netmap.h`: `$NETMAP_INCLUDE_DIR` (which must
/// have it), else the system's when building natively.
fn find_include_dir() -> Option<PathBuf> {
    if let Some(dir) = env::var_os("NETMAP_INCLUDE_DIR") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join(HEADER).is_file(),
            "NETMAP_INCLUDE_DIR={} has no {HEADER}: point it at the directory that holds \
             net/netmap.h (the sys/ directory of a netmap source tree, or /usr/include on \
             FreeBSD), or unset it to use the checked-in declarations",
            dir.display()
        );
        return Some(dir);
    }
    // The system's headers describe the target only when building natively.
    let native = env::var("HOST").ok() == env::var("TARGET").ok();
    if !native {
        return None;
    }
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let mut candidates = Vec::new();
    if target_os == "freebsd" {
        // netmap is part of FreeBSD's base system.
        candidates.push(Path::new("/usr/include"));
    }
    candidates.push(Path::new("/usr/local/include"));
    candidates
        .into_iter()
        .find(|dir| dir.join(HEADER).is_file())
        .map(Path::to_path_buf)
}

#[cfg(feature = "bindgen")]
fn generate(include_dir: &Path) -> String {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // netmap.h expects these from its includer (netmap_user.h includes them).
    let wrapper = "#include <stdint.h>\n#include <sys/types.h>\n#include <sys/time.h>\n\
                   #include <sys/socket.h>\n#include <net/if.h>\n#include <net/netmap.h>\n";
    let bindings = bindgen::Builder::default()
        .header_contents("netmap_sys_wrapper.h", wrapper)
        .clang_arg(format!("-I{}", include_dir.display()))
        .allowlist_type(
            "netmap_if|netmap_ring|netmap_slot|nmreq_header|nmreq_register|nmreq_option|\
             nmreq_opt_offsets|nmreq_port_info_get|timeval",
        )
        .allowlist_var("NETMAP_.*|NS_.*|NR_.*|NI_.*|NM_CACHE_ALIGN")
        .derive_default(true)
        .derive_debug(true)
        .derive_partialeq(true)
        .derive_eq(true)
        .wrap_unsafe_ops(true)
        .layout_tests(false)
        .generate_comments(false)
        .generate()
        .unwrap_or_else(|e| {
            panic!(
                "bindgen could not read {}/{HEADER} ({e}); is libclang installed? \
                 Build without the `bindgen` feature to use the checked-in declarations",
                include_dir.display()
            )
        });
    bindings
        .write_to_file(out.join("netmap_bindings.rs"))
        .expect("write the generated bindings to OUT_DIR");
    println!("cargo::rustc-cfg=netmap_sys_bindgen");
    format!("bindgen:{}", include_dir.display())
}

#[cfg(not(feature = "bindgen"))]
fn generate(_include_dir: &Path) -> String {
    unreachable!("generate is called only with the bindgen feature on")
}
