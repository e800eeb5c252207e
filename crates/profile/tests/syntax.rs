//! Line-level rules: comments, whitespace, continuations, sub-properties and syntax errors.

mod common;

use common::{names, parse_config, parse_credentials, properties, syntax_error, CONFIG};

#[test]
fn empty_files_have_no_profiles() {
    let set = common::parse_both("", "");
    assert!(names(&set).is_empty());
    assert!(set.warnings().is_empty());
}

#[test]
fn section_without_properties_is_profile() {
    let set = parse_config("[profile solo]");
    assert_eq!(names(&set), ["solo"]);
    assert!(properties(&set, "solo").is_empty());
}

#[test]
fn header_without_closing_bracket_fails() {
    let (file, line, message) = syntax_error("[profile ok]\nregion = x\n[profile broken\n", "");
    assert_eq!(file, CONFIG);
    assert_eq!(line, 3);
    assert!(message.contains("']'"), "{message}");
}

#[test]
fn header_text_after_bracket_fails() {
    let (_, line, _) = syntax_error("[profile a] trailing words", "");
    assert_eq!(line, 1);
}

#[test]
fn header_whitespace_is_trimmed() {
    let set = parse_config("[profile \tspaced \t]\n[profile\ttabbed]\n[   profile outer    ]");
    assert_eq!(names(&set), ["outer", "spaced", "tabbed"]);
    assert!(set.warnings().is_empty());
}

#[test]
fn property_before_header_fails() {
    let (file, line, message) = syntax_error("# leading comment\nregion = eu-west-1", "");
    assert_eq!(file, CONFIG);
    assert_eq!(line, 2);
    assert!(message.contains("before any section"), "{message}");
}

#[test]
fn property_is_read() {
    let set = parse_config("[profile a]\nregion = eu-west-1");
    assert_eq!(properties(&set, "a"), [("region", "eu-west-1")]);
}

#[test]
fn windows_line_endings_are_accepted() {
    let set = parse_config("[profile a]\r\nregion = eu-west-1\r\noutput = json\r\n");
    assert_eq!(
        properties(&set, "a"),
        [("output", "json"), ("region", "eu-west-1")]
    );
}

#[test]
fn byte_order_mark_is_skipped() {
    let set = parse_config("\u{feff}[profile a]\nregion = x");
    assert_eq!(properties(&set, "a"), [("region", "x")]);
}

#[test]
fn value_may_contain_equals() {
    let set = parse_config("[profile a]\nblob=aGVsbG8=\nexpr = x=y=z");
    assert_eq!(
        properties(&set, "a"),
        [("blob", "aGVsbG8="), ("expr", "x=y=z")]
    );
}

#[test]
fn value_may_contain_unicode() {
    let set = parse_config("[profile a]\nnote = é😂 ünïcode");
    assert_eq!(properties(&set, "a"), [("note", "é😂 ünïcode")]);
}

#[test]
fn names_and_values_are_trimmed() {
    let set = parse_config("[profile a]\nregion \t=  \teu-west-1 \t");
    assert_eq!(properties(&set, "a"), [("region", "eu-west-1")]);
}

#[test]
fn only_space_and_tab_are_trimmed() {
    // U+00A0 (no-break space) is not whitespace in profile files.
    let set = parse_config("[profile a]\nnote = \u{a0}x\u{a0}");
    assert_eq!(properties(&set, "a"), [("note", "\u{a0}x\u{a0}")]);
}

#[test]
fn value_may_be_empty() {
    let set = parse_config("[profile a]\nregion =");
    assert_eq!(properties(&set, "a"), [("region", "")]);
}

#[test]
fn property_without_name_fails() {
    let (_, line, message) = syntax_error("[profile a]\n= eu-west-1", "");
    assert_eq!(line, 2);
    assert!(message.contains("no name"), "{message}");
}

#[test]
fn property_without_equals_fails() {
    let (_, line, message) = syntax_error("[profile a]\nregion : eu-west-1", "");
    assert_eq!(line, 2);
    assert!(message.contains("no '='"), "{message}");
}

#[test]
fn syntax_error_hides_line_content() {
    let text = "[default]\naws_secret_access_key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let (_, line, message) = syntax_error(text, "");
    assert_eq!(line, 2);
    assert!(!message.contains("wJalr"), "{message}");
}

#[test]
fn syntax_error_in_credentials_names_that_file() {
    let (file, line, _) = syntax_error("[profile a]\nregion = x", "[a]\n\nkey");
    assert_eq!(file, common::CREDENTIALS);
    assert_eq!(line, 3);
}

#[test]
fn several_profiles_keep_their_properties() {
    let set = parse_config("[profile a]\nregion = one\n[profile b]\nregion = two\n[profile c]");
    assert_eq!(names(&set), ["a", "b", "c"]);
    assert_eq!(properties(&set, "a"), [("region", "one")]);
    assert_eq!(properties(&set, "b"), [("region", "two")]);
    assert!(properties(&set, "c").is_empty());
}

#[test]
fn blank_lines_are_ignored() {
    let set = parse_config("\t \n[profile a]\n\t\n \nregion = x\n\t \n[profile b]\n \t");
    assert_eq!(names(&set), ["a", "b"]);
    assert_eq!(properties(&set, "a"), [("region", "x")]);
}

#[test]
fn pound_comments_are_ignored() {
    let set = parse_config("# top\n[profile a] # after header\nregion = x # has # inside");
    assert_eq!(names(&set), ["a"]);
    assert_eq!(properties(&set, "a"), [("region", "x")]);
}

#[test]
fn semicolon_comments_are_ignored() {
    let set = parse_config("; top\n[profile a] ; after header\nregion = x ; has ; inside");
    assert_eq!(names(&set), ["a"]);
    assert_eq!(properties(&set, "a"), [("region", "x")]);
}

#[test]
fn mixed_comment_characters_are_ignored() {
    let set = parse_config("# top\n[profile a] ; after header\nregion = x # has ; inside");
    assert_eq!(properties(&set, "a"), [("region", "x")]);
}

#[test]
fn empty_comments_are_ignored() {
    let set = parse_config(";\n#\n[profile a];\nregion = x ;\n");
    assert_eq!(properties(&set, "a"), [("region", "x")]);
}

#[test]
fn comment_may_touch_header_bracket() {
    let set = parse_config("[profile a];touching\n[profile b]#touching");
    assert_eq!(names(&set), ["a", "b"]);
}

#[test]
fn comment_touching_value_stays_in_value() {
    let set = parse_config("[profile a]\none = x;y\ntwo = x#y");
    assert_eq!(properties(&set, "a"), [("one", "x;y"), ("two", "x#y")]);
}

#[test]
fn comment_only_value_is_empty() {
    let set = parse_config("[profile a]\nregion = # nothing here");
    assert_eq!(properties(&set, "a"), [("region", "")]);
}

#[test]
fn continuation_appends_line() {
    let set = parse_config("[profile a]\nnote = first\n second");
    assert_eq!(properties(&set, "a"), [("note", "first\nsecond")]);
}

#[test]
fn continuation_spans_several_lines() {
    let set = parse_config("[profile a]\nnote = first\n second\n\tthird");
    assert_eq!(properties(&set, "a"), [("note", "first\nsecond\nthird")]);
}

#[test]
fn continuation_is_trimmed() {
    let set = parse_config("[profile a]\nnote = first\n \t second \t ");
    assert_eq!(properties(&set, "a"), [("note", "first\nsecond")]);
}

#[test]
fn continuation_survives_blank_line() {
    let set = parse_config("[profile a]\nnote = first\n\n second");
    assert_eq!(properties(&set, "a"), [("note", "first\nsecond")]);
}

#[test]
fn continuation_keeps_comment_characters() {
    let set = parse_config("[profile a]\none = x\n more # kept\ntwo = y\n more ; kept");
    assert_eq!(
        properties(&set, "a"),
        [("one", "x\nmore # kept"), ("two", "y\nmore ; kept")]
    );
}

#[test]
fn indented_comment_is_continuation() {
    // The SDK vectors treat any indented line as a continuation, comment or not.
    let set = parse_config("[profile a]\nnote = x\n  # indented");
    assert_eq!(properties(&set, "a"), [("note", "x\n# indented")]);
}

#[test]
fn continuation_before_header_fails() {
    let (_, line, message) = syntax_error(" orphan", "");
    assert_eq!(line, 1);
    assert!(message.contains("before any section"), "{message}");
}

#[test]
fn continuation_without_property_fails() {
    let (_, line, message) = syntax_error("[profile a]\n orphan", "");
    assert_eq!(line, 2);
    assert!(message.contains("continues no property"), "{message}");
}

#[test]
fn header_ends_continuation() {
    let (_, line, _) = syntax_error("[profile a]\nnote = x\n[profile a]\n orphan", "");
    assert_eq!(line, 4);
}

#[test]
fn sub_properties_are_parsed() {
    let set = parse_config(
        "[profile a]\ns3 =\n  max_concurrent_requests = 20\n  addressing_style = path",
    );
    let profile = set.profile("a").expect("profile a");
    assert_eq!(
        profile.get("s3"),
        Some("\nmax_concurrent_requests = 20\naddressing_style = path")
    );
    let sub = profile.sub_properties("s3").expect("s3 has sub-properties");
    assert_eq!(sub.len(), 2);
    assert_eq!(sub.get("max_concurrent_requests"), Some(&"20"));
    assert_eq!(sub.get("addressing_style"), Some(&"path"));
}

#[test]
fn plain_value_has_no_sub_properties() {
    let set = parse_config("[profile a]\nregion = x\n more");
    let profile = set.profile("a").expect("profile a");
    assert!(profile.sub_properties("region").is_none());
    assert!(profile.sub_properties("missing").is_none());
}

#[test]
fn sub_property_without_equals_fails() {
    let (_, line, message) = syntax_error("[profile a]\ns3 =\n  fine = 1\n  broken", "");
    assert_eq!(line, 4);
    assert!(message.contains("sub-property"), "{message}");
}

#[test]
fn sub_property_may_have_empty_value() {
    let set = parse_config("[profile a]\ns3 =\n  style =");
    let profile = set.profile("a").expect("profile a");
    assert_eq!(profile.get("s3"), Some("\nstyle ="));
    let sub = profile.sub_properties("s3").expect("s3 has sub-properties");
    assert_eq!(sub.get("style"), Some(&""));
}

#[test]
fn sub_property_without_name_fails() {
    let (_, line, message) = syntax_error("[profile a]\ns3 =\n  = path", "");
    assert_eq!(line, 3);
    assert!(message.contains("no name"), "{message}");
}

#[test]
fn sub_property_name_may_contain_space() {
    let set = parse_config("[profile a]\ns3 =\n  odd name = 1");
    let profile = set.profile("a").expect("profile a");
    assert_eq!(profile.get("s3"), Some("\nodd name = 1"));
}

#[test]
fn sub_properties_skip_blank_lines() {
    let set = parse_config("[profile a]\ns3 =\n  one = 1\n\t \n  two = 2");
    let profile = set.profile("a").expect("profile a");
    assert_eq!(profile.get("s3"), Some("\none = 1\ntwo = 2"));
}

#[test]
fn later_sub_property_wins() {
    let set = parse_config("[profile a]\ns3 =\n  style = path\n  style = virtual");
    let sub = set.profile("a").unwrap().sub_properties("s3").unwrap();
    assert_eq!(sub.get("style"), Some(&"virtual"));
}

#[test]
fn credentials_file_uses_same_syntax() {
    let set = parse_credentials("# creds\n[a] ; comment\nkey = v ; c\nnote = x\n y");
    assert_eq!(properties(&set, "a"), [("key", "v"), ("note", "x\ny")]);
}
