//! Finding a lab's objects by name: every namespace, link and state file of
//! a lab starts with its prefix.

/// The entries of directory `dir` whose names start with `prefix`; none
/// when `dir` does not exist (no namespace or lab was ever made).
pub fn entries_named(dir: &str, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter(|name| name.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}
