//! A new user's journey, round 28 (benches/RESULTS.md): `moa plan import` / `export`,
//! `moa model`, `moa generate` on tiny random models; what it found wrong, each pinned
//! here. None of these needs the fetched model or a GPU.

mod common;

use common::cli::s;

common::cli::tagged!();

/// `-o` through a link to a file replaced the link with a regular file (the rename of the
/// whole-file write acted on the link's own path) and left the file it named as it was.
/// The link is followed now: the file it names gets the output, the link stays.
#[cfg(unix)]
#[test]
fn an_output_through_a_link_writes_the_file_it_names() {
    let dir = scratch("link-out");
    let plan = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let real = dir.join("real.json");
    std::fs::write(&real, "old\n").unwrap();
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (code, _, err) = run("moa", &["plan", "export", s(&plan), "-o", s(&link)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        link.symlink_metadata().unwrap().is_symlink(),
        "the link was replaced"
    );
    let text = std::fs::read_to_string(&real).unwrap();
    assert!(text.starts_with('{') && text.contains("alphas"), "{text}");
}

/// `-o /dev/stdout` (here `/proc/self/fd/1`) with standard output in a file renamed a
/// temporary onto the link: as root it replaced the system's `/dev/stdout` link with a
/// plain file and the output never reached the file. Paths through `/dev` and `/proc` are
/// written in place; `-o -` is standard output, as `-` is standard input.
#[cfg(target_os = "linux")]
#[test]
fn an_output_to_a_descriptor_or_dash_reaches_standard_output() {
    let dir = scratch("stdout-out");
    let plan = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    for (i, out) in ["/proc/self/fd/1", "-"].iter().enumerate() {
        let captured = dir.join(format!("out{i}.json"));
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_moa"))
            .args(["plan", "export", s(&plan), "-o", out])
            .current_dir(&dir)
            .stdout(std::fs::File::create(&captured).unwrap())
            .status()
            .unwrap();
        assert!(status.success(), "-o {out}");
        let text = std::fs::read_to_string(&captured).unwrap();
        assert!(text.contains("alphas"), "-o {out}: {text}");
    }
    assert!(!dir.join("-").exists(), "-o - wrote a file named -");
}
