//! The Nix side and the Rust side agree on what a sandbox holds: the profile that
//! nix/sandbox-spec.nix renders (evaluated by the real Nix, against the stub nixpkgs in
//! tests/nix-stub) is read by the same `Profile` type that `launch --profile` uses, with its
//! unknown-field and validity checks. A field added on one side only fails here.

use std::path::Path;
use std::process::Command;

use crate::common::prerequisites;
use sandbox_deck::spec::Profile;

fn evaluate(expr: &str) -> serde_json::Value {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--expr", expr])
        .current_dir(repo)
        .env_remove("NIX_PATH")
        .env("NIX_CONFIG", "build-users-group =\nsubstituters =")
        .output()
        .expect("running nix-instantiate");
    assert!(
        out.status.success(),
        "nix-instantiate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from nix-instantiate")
}

#[test]
fn the_profile_nix_renders_is_the_profile_the_deck_reads() {
    if !prerequisites(&["nix-instantiate"]) {
        return;
    }
    let json = evaluate(
        "(import ./nix/sandbox-spec.nix { pkgs = import ./tests/nix-stub/pkgs.nix { }; }).profile",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profile.json");
    std::fs::write(&file, serde_json::to_vec(&json).unwrap()).unwrap();
    let profile = Profile::load(&file).expect("the deck reads the Nix profile");
    assert_eq!(profile.name, "nix");
    assert!(
        profile.path[0].starts_with("/nix/store"),
        "{:?}",
        profile.path
    );
    assert_eq!(profile.ro_paths, vec![Path::new("/nix/store").to_owned()]);
    assert_eq!(
        profile.chromium_extensions,
        vec!["fcoeoabgfenejglbffodgkkbkcdhcgfn".to_string()]
    );
    assert!(profile.nix_ld.is_some() && profile.env.contains_key("NIX_LD_LIBRARY_PATH"));

    // Both sides have the same fields: what the host profile serialises to is what Nix writes.
    let host = serde_json::to_value(Profile::host()).unwrap();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&json), keys(&host));
}

#[test]
fn the_extension_ids_the_nix_spec_forces_are_the_host_profiles() {
    if !prerequisites(&["nix-instantiate"]) {
        return;
    }
    let ids = evaluate(
        "(import ./nix/sandbox-spec.nix { pkgs = import ./tests/nix-stub/pkgs.nix { }; }).chromiumExtensions",
    );
    let host: Vec<String> = Profile::host().chromium_extensions;
    let nix: Vec<String> = serde_json::from_value(ids).unwrap();
    assert_eq!(
        nix, host,
        "one list of forced extensions, in the spec and the host profile"
    );
}
