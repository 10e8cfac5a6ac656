use super::*;

static SITE: Site = Site {
    path: || "app::login",
    name: None,
    file: "src/app.rs",
    line: 7,
    level: Level::Error,
    reports_errors: true,
    calls: crate::capture::calls::CallSlot::new(),
    args: &[
        ArgMeta {
            name: "user",
            sensitive: false,
            shown: true,
        },
        ArgMeta {
            name: "pw",
            sensitive: true,
            shown: true,
        },
        ArgMeta {
            name: "n",
            sensitive: false,
            shown: true,
        },
    ],
};

#[test]
fn frames_are_listed_while_their_call_runs() {
    let args = [
        ArgValue::Str("ann"),
        ArgValue::Str("hun\"ter2"),
        ArgValue::from(3u8),
    ];
    let frame = Frame::new(&SITE, &args);
    let inside = call::<false, _>(&frame, || call::<false, _>(&frame, snapshot));
    assert_eq!(inside.calls.len(), 2);
    let c = &inside.calls[0];
    assert_eq!(c.function, "app::login");
    assert_eq!(c.args[0].value, "\"ann\"");
    assert_eq!(c.args[1].value, PLACEHOLDER);
    assert_eq!(c.args[2].value, "3");
    assert!(inside.secrets.contains(&"hun\"ter2".to_owned()));
    assert!(inside.secrets.contains(&"hun\\\"ter2".to_owned()));
    assert!(snapshot().calls.is_empty());
}

#[test]
fn a_panicking_body_leaves_no_frame_behind() {
    let args = [ArgValue::Str("a"), ArgValue::Str("b"), ArgValue::from(1u8)];
    let frame = Frame::new(&SITE, &args);
    let r = std::panic::catch_unwind(|| call::<false, _>(&frame, || panic!("boom")));
    assert!(r.is_err());
    assert!(snapshot().calls.is_empty());
}
