//! Reading files from disk, resolving their paths, and the two layouts of one set of profiles.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use awsu_profile::{load, Error, ProfileSet, Sources};

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// Collects every profile as name -> (key -> value), to compare sets parsed from different files.
fn flatten(set: &ProfileSet) -> BTreeMap<String, BTreeMap<String, String>> {
    set.names()
        .map(|name| {
            let profile = set.profile(name).unwrap();
            let values = profile
                .keys()
                .map(|key| (key.to_string(), profile.get(key).unwrap().to_string()))
                .collect();
            (name.to_string(), values)
        })
        .collect()
}

#[test]
fn both_layouts_give_same_profiles() {
    let all_in_credentials = format!(
        "[default]\n\
         aws_access_key_id     = {KEY_ID}\n\
         aws_secret_access_key = {SECRET}\n\
         [foo]\n\
         aws_access_key_id     = {KEY_ID}\n\
         aws_secret_access_key = {SECRET}\n\
         mfa_serial            = arn:aws:iam::123456789012:mfa/foo\n\
         [bar]\n\
         mfa_serial            = arn:aws:iam::123456789012:mfa/bar\n\
         role_arn              = arn:aws:iam::123456789012:role/foo-cross-account\n\
         source_profile        = default\n"
    );
    let split_config = "[profile foo]\n\
         mfa_serial            = arn:aws:iam::123456789012:mfa/foo\n\
         [profile bar]\n\
         mfa_serial            = arn:aws:iam::123456789012:mfa/bar\n\
         role_arn              = arn:aws:iam::123456789012:role/foo-cross-account\n\
         source_profile        = default\n";
    let split_credentials = format!(
        "[default]\n\
         aws_access_key_id     = {KEY_ID}\n\
         aws_secret_access_key = {SECRET}\n\
         [foo]\n\
         aws_access_key_id     = {KEY_ID}\n\
         aws_secret_access_key = {SECRET}\n"
    );

    let first = common::parse_both("", &all_in_credentials);
    let second = common::parse_both(split_config, &split_credentials);

    assert!(first.warnings().is_empty(), "{:?}", first.warnings());
    assert!(second.warnings().is_empty(), "{:?}", second.warnings());
    assert_eq!(flatten(&first), flatten(&second));

    let names: Vec<&str> = first.names().collect();
    assert_eq!(names, ["bar", "default", "foo"]);
    let bar = first.profile("bar").unwrap();
    assert_eq!(bar.get("source_profile"), Some("default"));
    assert_eq!(
        bar.get("role_arn"),
        Some("arn:aws:iam::123456789012:role/foo-cross-account")
    );
    let foo = second.profile("foo").unwrap();
    assert_eq!(foo.get("aws_secret_access_key"), Some(SECRET));
    assert_eq!(
        foo.get("mfa_serial"),
        Some("arn:aws:iam::123456789012:mfa/foo")
    );
    assert_eq!(
        foo.location("mfa_serial").unwrap().file,
        Path::new(common::CONFIG)
    );
    assert_eq!(
        foo.location("aws_access_key_id").unwrap().file,
        Path::new(common::CREDENTIALS)
    );
}

#[test]
fn bar_in_config_is_ignored_with_warning() {
    // The layout earlier awsu versions accepted: [bar] without the prefix in the config file.
    let config = "[bar]\nmfa_serial = arn:aws:iam::123456789012:mfa/bar\n";
    let set = common::parse_both(
        config,
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE",
    );
    assert!(set.profile("bar").is_none());
    assert_eq!(set.warnings().len(), 1);
    assert!(set.warnings()[0].message.contains("[profile bar]"));
}

#[test]
fn load_reads_both_files() {
    let directory = tempfile::tempdir().unwrap();
    let config = directory.path().join("config");
    let credentials = directory.path().join("credentials");
    fs::write(&config, "[profile a]\nregion = eu-west-1\n").unwrap();
    fs::write(&credentials, format!("[a]\naws_access_key_id = {KEY_ID}\n")).unwrap();

    let set = load(&config, &credentials).unwrap();
    let profile = set.profile("a").unwrap();
    assert_eq!(profile.get("region"), Some("eu-west-1"));
    assert_eq!(profile.get("aws_access_key_id"), Some(KEY_ID));
    assert_eq!(profile.location("region").unwrap().file, config);
    assert_eq!(
        profile.location("aws_access_key_id").unwrap().file,
        credentials
    );
}

#[test]
fn load_treats_missing_files_as_empty() {
    let directory = tempfile::tempdir().unwrap();
    let set = load(
        &directory.path().join("no-config"),
        &directory.path().join("no-credentials"),
    )
    .unwrap();
    assert_eq!(set.names().count(), 0);
}

#[test]
fn load_rejects_directory() {
    let directory = tempfile::tempdir().unwrap();
    let missing = directory.path().join("missing");
    let error = load(directory.path(), &missing).unwrap_err();
    match &error {
        Error::Io { path, .. } => assert_eq!(path, directory.path()),
        other => panic!("expected an I/O error, got {other}"),
    }
    assert!(
        error
            .to_string()
            .contains(&directory.path().display().to_string()),
        "{error}"
    );
}

#[cfg(unix)]
#[test]
fn load_rejects_unreadable_file() {
    use std::os::unix::fs::PermissionsExt;

    let directory = tempfile::tempdir().unwrap();
    let credentials = directory.path().join("credentials");
    fs::write(&credentials, "[a]\n").unwrap();
    fs::set_permissions(&credentials, fs::Permissions::from_mode(0o000)).unwrap();
    let result = load(&directory.path().join("missing"), &credentials);

    // NOTE: root and CAP_DAC_OVERRIDE read the file anyway, so only the outcome that matches
    // what the process can do is checked.
    if fs::read(&credentials).is_ok() {
        assert!(result.is_ok());
        return;
    }
    match result {
        Err(Error::Io { path, .. }) => assert_eq!(path, credentials),
        Err(other) => panic!("expected an I/O error, got {other}"),
        Ok(_) => panic!("expected an I/O error for an unreadable file"),
    }
}

#[test]
fn load_rejects_invalid_utf8_with_line() {
    let directory = tempfile::tempdir().unwrap();
    let config = directory.path().join("config");
    fs::write(&config, b"[profile a]\nregion = x\nnote = \xff\xfe\n").unwrap();
    let error = load(&config, &directory.path().join("missing")).unwrap_err();
    match error {
        Error::Syntax { file, line, .. } => {
            assert_eq!(file, config);
            assert_eq!(line, 3);
        }
        other => panic!("expected a syntax error, got {other}"),
    }
}

#[test]
fn syntax_error_display_names_file_and_line() {
    let error = awsu_profile::parse(
        "[profile a]\nbroken",
        Path::new("/etc/aws/config"),
        "",
        Path::new("/etc/aws/credentials"),
    )
    .unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("/etc/aws/config:2: "), "{text}");
}

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let map: BTreeMap<String, OsString> = pairs
        .iter()
        .map(|(name, value)| (name.to_string(), OsString::from(value)))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn sources_default_to_home() {
    let sources = Sources::from_vars(vars(&[("HOME", "/home/user")])).unwrap();
    assert_eq!(sources.config, PathBuf::from("/home/user/.aws/config"));
    assert_eq!(
        sources.credentials,
        PathBuf::from("/home/user/.aws/credentials")
    );
}

#[test]
fn sources_honour_environment_overrides() {
    let sources = Sources::from_vars(vars(&[
        ("HOME", "/home/user"),
        ("AWS_CONFIG_FILE", "/etc/aws/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "~/secrets/creds"),
    ]))
    .unwrap();
    assert_eq!(sources.config, PathBuf::from("/etc/aws/config"));
    assert_eq!(
        sources.credentials,
        PathBuf::from("/home/user/secrets/creds")
    );
}

#[test]
fn sources_fall_back_to_userprofile() {
    let sources = Sources::from_vars(vars(&[("HOME", ""), ("USERPROFILE", "/users/u")])).unwrap();
    assert_eq!(sources.config, PathBuf::from("/users/u/.aws/config"));
}

#[test]
fn sources_fall_back_to_homedrive() {
    let sources = Sources::from_vars(vars(&[("HOMEDRIVE", "/mnt"), ("HOMEPATH", "/u")])).unwrap();
    assert_eq!(sources.config, PathBuf::from("/mnt/u/.aws/config"));
}

#[test]
fn sources_leave_tilde_user_alone() {
    let sources = Sources::from_vars(vars(&[
        ("HOME", "/home/user"),
        ("AWS_CONFIG_FILE", "~other/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "~"),
    ]))
    .unwrap();
    assert_eq!(sources.config, PathBuf::from("~other/config"));
    assert_eq!(sources.credentials, PathBuf::from("/home/user"));
}

#[test]
fn sources_without_home_fail() {
    let error = Sources::from_vars(vars(&[])).unwrap_err();
    assert!(matches!(error, Error::HomeNotFound));
    assert!(error.to_string().contains("AWS_CONFIG_FILE"), "{error}");
}

#[test]
fn sources_without_home_but_absolute_paths_succeed() {
    let sources = Sources::from_vars(vars(&[
        ("AWS_CONFIG_FILE", "/c"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/k"),
    ]))
    .unwrap();
    assert_eq!(sources.config, PathBuf::from("/c"));
    assert_eq!(sources.credentials, PathBuf::from("/k"));
}

#[test]
fn sources_load_reads_files() {
    let directory = tempfile::tempdir().unwrap();
    let config = directory.path().join("config");
    fs::write(&config, "[profile a]\n").unwrap();
    let sources = Sources {
        config,
        credentials: directory.path().join("missing"),
    };
    let set = sources.load().unwrap();
    assert_eq!(set.names().collect::<Vec<_>>(), ["a"]);
}
