//! Section and name rules: prefixes, merging across sections and files, case, warnings.

mod common;

use std::path::Path;

use common::{names, parse_both, parse_config, parse_credentials, properties, CONFIG, CREDENTIALS};

#[test]
fn repeated_sections_merge() {
    let set = parse_config("[profile a]\nregion = x\n[profile b]\n[profile a]\noutput = json");
    assert_eq!(properties(&set, "a"), [("output", "json"), ("region", "x")]);
}

#[test]
fn later_duplicate_key_wins() {
    let set = parse_config("[profile a]\nregion = one\nregion = two");
    assert_eq!(properties(&set, "a"), [("region", "two")]);
    assert_eq!(
        set.profile("a").unwrap().location("region").unwrap().line,
        3
    );
}

#[test]
fn later_section_key_wins() {
    let set = parse_config("[profile a]\nregion = one\n[profile a]\nregion = two");
    assert_eq!(properties(&set, "a"), [("region", "two")]);
}

#[test]
fn property_names_ignore_case() {
    let set = parse_config("[profile a]\nRegion = one\n[profile a]\nREGION = two");
    let profile = set.profile("a").unwrap();
    assert_eq!(profile.keys().collect::<Vec<_>>(), ["region"]);
    assert_eq!(profile.get("region"), Some("two"));
    assert_eq!(profile.get("Region"), Some("two"));
    assert_eq!(profile.location("rEgIoN").unwrap().line, 4);
}

#[test]
fn continuation_follows_renamed_case() {
    let set = parse_config("[profile a]\nNote = x\n more");
    assert_eq!(properties(&set, "a"), [("note", "x\nmore")]);
}

#[test]
fn all_identifier_characters_in_property_names() {
    let name = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_/.%@:+";
    let set = parse_config(&format!("[profile a]\n{name} = v"));
    assert_eq!(
        properties(&set, "a"),
        [(name.to_ascii_lowercase().as_str(), "v")]
    );
}

#[test]
fn profile_names_keep_case() {
    let set = parse_config("[profile Prod]\nregion = x\n[profile prod]\nregion = y");
    assert_eq!(names(&set), ["Prod", "prod"]);
    assert!(set.profile("PROD").is_none());
}

#[test]
fn all_identifier_characters_in_profile_names() {
    let name = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_/.%@:+";
    let set = parse_config(&format!("[profile {name}]"));
    assert_eq!(names(&set), [name]);
}

#[test]
fn invalid_profile_name_is_ignored_with_warning() {
    let set = parse_config("[profile ok]\n[profile foo!bar]\nregion = x");
    assert_eq!(names(&set), ["ok"]);
    let warnings = set.warnings();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].line, 2);
    assert!(warnings[0].message.contains("`!`"), "{}", warnings[0]);
}

#[test]
fn invalid_property_name_is_ignored_with_warning() {
    let set = parse_config("[profile a]\nregion = x\nbad name = wJalrXUtnFEMI/K7MDENG");
    assert_eq!(properties(&set, "a"), [("region", "x")]);
    let warnings = set.warnings();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].line, 3);
    assert!(!warnings[0].message.contains("bad name"), "{}", warnings[0]);
    assert!(!warnings[0].message.contains("wJalr"), "{}", warnings[0]);
}

#[test]
fn profile_names_allow_spaces_slashes_dots() {
    let set = parse_both(
        "[profile my team/prod.eu]\nregion = eu-west-1",
        "[my team/prod.eu]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE",
    );
    assert_eq!(names(&set), ["my team/prod.eu"]);
    assert_eq!(
        properties(&set, "my team/prod.eu"),
        [
            ("aws_access_key_id", "AKIAIOSFODNN7EXAMPLE"),
            ("region", "eu-west-1")
        ]
    );
    assert!(set.warnings().is_empty());
}

#[test]
fn quoted_profile_name_is_unquoted() {
    let set = parse_config("[profile \"my team\"]\nregion = x\n[profile 'other']");
    assert_eq!(names(&set), ["my team", "other"]);
}

#[test]
fn profile_without_name_warns() {
    let set = parse_config("[profile]\nregion = x\n[profile \"\"]\n[]");
    assert!(names(&set).is_empty());
    let lines: Vec<usize> = set.warnings().iter().map(|warning| warning.line).collect();
    assert_eq!(lines, [1, 3, 4]);
}

#[test]
fn config_default_section_is_profile() {
    let set = parse_config("[default]\nregion = x");
    assert_eq!(properties(&set, "default"), [("region", "x")]);
}

#[test]
fn prefixed_default_wins_when_first() {
    let set = parse_config("[profile default]\nregion = kept\n[default]\noutput = dropped");
    assert_eq!(properties(&set, "default"), [("region", "kept")]);
    assert_eq!(set.warnings().len(), 1);
    assert_eq!(set.warnings()[0].line, 3);
}

#[test]
fn prefixed_default_wins_when_last() {
    let set = parse_config("[default]\noutput = dropped\n[profile default]\nregion = kept");
    assert_eq!(properties(&set, "default"), [("region", "kept")]);
    assert_eq!(set.warnings()[0].line, 1);
}

#[test]
fn repeated_prefixed_defaults_merge() {
    let config = "[profile default]\none = 1\n[default]\ntwo = 2\n[profile default]\nthree = 3";
    let set = parse_both(config, "[default]\nfour = 4");
    assert_eq!(
        properties(&set, "default"),
        [("four", "4"), ("one", "1"), ("three", "3")]
    );
}

#[test]
fn unprefixed_config_section_warns() {
    let set = parse_config("[profile ok]\n\n[bar]\nmfa_serial = arn:aws:iam::123456789012:mfa/bar");
    assert_eq!(names(&set), ["ok"]);
    let warnings = set.warnings();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].file, Path::new(CONFIG));
    assert_eq!(warnings[0].line, 3);
    assert!(
        warnings[0].message.contains("rename it to [profile bar]"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[0]
            .to_string()
            .starts_with(&format!("{CONFIG}:3: ")),
        "{}",
        warnings[0]
    );
}

#[test]
fn joined_prefix_is_not_profile() {
    let set = parse_config("[profilefoo]\nregion = x\n[profile bar]");
    assert_eq!(names(&set), ["bar"]);
    assert!(set.warnings()[0].message.contains("[profile profilefoo]"));
}

#[test]
fn cli_sections_are_ignored_quietly() {
    let set = parse_config("[plugins]\ncli_legacy_plugin_path = /x\n[preview]\ncloudsearch = true");
    assert!(names(&set).is_empty());
    assert!(set.warnings().is_empty());
}

#[test]
fn unknown_prefixed_section_warns() {
    let set = parse_config("[my team]\nregion = x");
    assert!(names(&set).is_empty());
    assert!(set.warnings()[0].message.contains("[profile my team]"));
}

#[test]
fn credentials_section_is_profile() {
    let set = parse_credentials("[default]\nkey = 1\n[   foo    ]\nkey = 2");
    assert_eq!(names(&set), ["default", "foo"]);
}

#[test]
fn credentials_profile_prefix_is_ignored() {
    let set = parse_credentials("[profile foo]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n[bar]");
    assert_eq!(names(&set), ["bar"]);
    let warnings = set.warnings();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].file, Path::new(CREDENTIALS));
    assert_eq!(warnings[0].line, 1);
    assert!(
        warnings[0].message.contains("rename it to [foo]"),
        "{}",
        warnings[0]
    );
}

#[test]
fn credentials_name_with_space_is_profile() {
    let set = parse_credentials("[my team]\nkey = 1");
    assert_eq!(names(&set), ["my team"]);
}

#[test]
fn sso_session_is_kept_apart() {
    let set = parse_config(
        "[sso-session corp]\nsso_region = us-east-1\n[profile dev]\nsso_session = corp",
    );
    assert_eq!(names(&set), ["dev"]);
    let session = set.sso_session("corp").expect("sso-session corp");
    assert_eq!(session.name(), "corp");
    assert_eq!(session.get("sso_region"), Some("us-east-1"));
    assert!(set.profile("corp").is_none());
    assert!(set.profile("sso-session corp").is_none());
}

#[test]
fn services_section_is_kept_apart() {
    let set = parse_config("[services local]\ns3 =\n  endpoint_url = http://127.0.0.1:9000");
    assert!(names(&set).is_empty());
    let services = set.services("local").expect("services local");
    let s3 = services.sub_properties("s3").expect("s3 sub-properties");
    assert_eq!(s3.get("endpoint_url"), Some(&"http://127.0.0.1:9000"));
}

#[test]
fn sso_session_in_credentials_is_ignored() {
    let set = parse_credentials("[sso-session corp]\nsso_region = us-east-1");
    assert!(names(&set).is_empty());
    assert!(set.sso_session("corp").is_none());
    assert_eq!(set.warnings().len(), 1);
}

#[test]
fn joined_sso_session_in_credentials_is_profile() {
    let set = parse_credentials("[sso-sessionfoo]\nname = value\n[bar]");
    assert_eq!(names(&set), ["bar", "sso-sessionfoo"]);
}

#[test]
fn files_merge_into_one_profile() {
    let set = parse_both("[profile a]\nregion = x", "[a]\nkey = y");
    assert_eq!(properties(&set, "a"), [("key", "y"), ("region", "x")]);
}

#[test]
fn credentials_value_wins() {
    let set = parse_both(
        "[profile a]\nregion = config\noutput = json",
        "[a]\n\nREGION = credentials",
    );
    let profile = set.profile("a").unwrap();
    assert_eq!(profile.get("region"), Some("credentials"));
    assert_eq!(profile.get("output"), Some("json"));
    let region = profile.location("region").unwrap();
    assert_eq!(region.file, Path::new(CREDENTIALS));
    assert_eq!(region.line, 3);
    let output = profile.location("output").unwrap();
    assert_eq!(output.file, Path::new(CONFIG));
    assert_eq!(output.line, 3);
}

#[test]
fn profile_only_in_credentials_exists() {
    let set = parse_both("[profile a]", "[b]");
    assert_eq!(names(&set), ["a", "b"]);
}

#[test]
fn debug_redacts_secrets() {
    let set = parse_both(
        "[profile a]\nregion = eu-west-1\nmy_token_file = /tmp/token-path\ns3 =\n  client_secret = hidden-sub\n  style = path",
        "[a]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\naws_session_token = FwoGZXIvYXdzEXAMPLETOKEN",
    );
    for text in [
        format!("{set:?}"),
        format!("{set:#?}"),
        format!("{:?}", set.profile("a").unwrap()),
    ] {
        assert!(!text.contains("wJalr"), "{text}");
        assert!(!text.contains("EXAMPLETOKEN"), "{text}");
        assert!(!text.contains("/tmp/token-path"), "{text}");
        assert!(!text.contains("hidden-sub"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(text.contains("AKIAIOSFODNN7EXAMPLE"), "{text}");
        assert!(text.contains("eu-west-1"), "{text}");
        assert!(text.contains("path"), "{text}");
    }
}

#[test]
fn names_are_sorted() {
    let set = parse_both("[profile zeta]\n[profile alpha]", "[mid]");
    assert_eq!(names(&set), ["alpha", "mid", "zeta"]);
}
