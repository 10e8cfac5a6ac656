//! Request bodies beyond bare forms and JSON, as stored: XML and SOAP, GraphQL, JSON inside
//! a field, bodies whose declared type is not what they are, multipart forms. Each keeps
//! its secret-named fields out of the database and its other fields in it, also when the
//! body is cut at the limit inside a secret.

mod support;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use http::Request;
use stacktrace::http::StacktraceLayer;
use stacktrace::{Config, PLACEHOLDER};
use stacktrace_tests::{contains, raw_bytes};
use support::http::{client, echo_tagged, flush, full, install, send, serve};

const LIMIT: usize = 1024;

fn setup() -> std::path::PathBuf {
    install(|| {
        Config::default()
            .capture_env(false)
            .capture_body(true)
            .max_payload_bytes(LIMIT)
    })
}

/// Reads the whole body, stores an event tagged by `x-tag`, answers the length it read.
async fn echo(headers: HeaderMap, body: Bytes) -> String {
    echo_tagged("seen", &headers, &body)
}

fn app() -> Router {
    Router::new()
        .route("/echo", post(echo))
        .layer(StacktraceLayer::new())
}

/// Posts `body` to `/echo` tagged `tag`, with a `content-type` unless it is empty.
async fn post_body(addr: std::net::SocketAddr, tag: &str, content_type: &str, body: String) {
    let mut req = Request::post(format!("http://{addr}/echo")).header("x-tag", tag);
    if !content_type.is_empty() {
        req = req.header("content-type", content_type);
    }
    let (status, _, _) = send(&client(), req.body(full(body)).unwrap()).await;
    assert!(status.is_success(), "{tag}: {status}");
}

/// The stored body of the one event tagged `tag` (a tag may begin another: `xml`).
fn body_tagged(tag: &str) -> String {
    let message = format!("seen {tag}");
    let mut events = stacktrace::store()
        .unwrap()
        .query()
        .text(&message)
        .all()
        .unwrap();
    events.retain(|e| e.message == message);
    assert_eq!(events.len(), 1, "{tag}: {events:#?}");
    let body = &events[0].payload["request"]["body"];
    body.as_str()
        .unwrap_or_else(|| panic!("{tag}: {body}"))
        .to_owned()
}

/// A body of some format: its tag, content type and text, the secrets in it and the
/// controls (ordinary fields) that must stay.
struct Case {
    tag: &'static str,
    content_type: &'static str,
    body: String,
    secrets: &'static [&'static str],
    controls: &'static [&'static str],
}

fn case(
    tag: &'static str,
    content_type: &'static str,
    body: &str,
    secrets: &'static [&'static str],
    controls: &'static [&'static str],
) -> Case {
    Case {
        tag,
        content_type,
        body: body.to_owned(),
        secrets,
        controls,
    }
}

/// Posts each case, then checks its stored body and the database's bytes.
async fn check(cases: &[Case], hidden_in_body: bool) {
    let dir = setup();
    let addr = serve(app()).await;
    for c in cases {
        post_body(addr, c.tag, c.content_type, c.body.clone()).await;
    }
    flush();
    assert!(stacktrace::store().unwrap().flush().is_ok());
    let raw = raw_bytes(&dir);
    for c in cases {
        let stored = body_tagged(c.tag);
        if hidden_in_body {
            assert!(stored.contains(PLACEHOLDER), "{}: {stored}", c.tag);
        }
        for secret in c.secrets {
            assert!(!stored.contains(secret), "{}: {secret} in {stored}", c.tag);
            assert!(
                !contains(&raw, secret.as_bytes()),
                "{secret} is in the database"
            );
        }
        for control in c.controls {
            assert!(
                stored.contains(control),
                "{}: {control} missing from {stored}",
                c.tag
            );
        }
    }
}

// Regression: XML, SOAP and GraphQL bodies, JSON inside a JSON string or a form field, and
// bodies whose declared type was not what they were kept their secret-named fields in
// clear; only bare forms and JSON were redacted by field name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_format_hides_its_secret_fields() {
    let soap = concat!(
        r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope">"#,
        "<soap:Header><wsse:Login><wsse:Username>ctl-soap-user</wsse:Username>",
        r#"<wsse:Password Type="http://x/#PasswordText">sec-soap-pass</wsse:Password>"#,
        "</wsse:Login></soap:Header><soap:Body><ns:Call>",
        "<ns:AccessToken>sec-soap-token</ns:AccessToken><ns:City>ctl-soap-city</ns:City>",
        "</ns:Call></soap:Body></soap:Envelope>",
    );
    let cases = [
        case(
            "xml",
            "application/xml",
            "<login><user>ctl-xml-user</user><password>sec-xml-pass</password></login>",
            &["sec-xml-pass"],
            &["<user>ctl-xml-user</user>"],
        ),
        case(
            "soap",
            "application/soap+xml; charset=utf-8",
            soap,
            &["sec-soap-pass", "sec-soap-token"],
            &["ctl-soap-user", "<ns:City>ctl-soap-city</ns:City>"],
        ),
        case(
            "attributes",
            "text/xml",
            r#"<user name="ctl-attr-name" password="sec-attr-pass"/>"#,
            &["sec-attr-pass"],
            &[r#"name="ctl-attr-name""#],
        ),
        case(
            "cdata",
            "application/atom+xml",
            "<entry><title>ctl-cdata-title</title><password><![CDATA[sec-cdata-pass]]></password></entry>",
            &["sec-cdata-pass"],
            &["ctl-cdata-title"],
        ),
        case(
            "graphql",
            "application/graphql",
            r#"mutation { login(user: "ctl-gql-user", password: "sec-gql-pass", apiToken: "sec-gql-token") { id } }"#,
            &["sec-gql-pass", "sec-gql-token"],
            &[r#"user: "ctl-gql-user""#],
        ),
        case(
            "graphql-json",
            "application/json",
            r#"{"query":"mutation Login($v: LoginInput!) { login(password: \"sec-gqljson-pass\", user: \"ctl-gqljson-user\", input: $v) { id } }","variables":{"v":{"token":"sec-gqljson-var","city":"ctl-gqljson-city"}}}"#,
            &["sec-gqljson-pass", "sec-gqljson-var"],
            &["ctl-gqljson-user", "ctl-gqljson-city"],
        ),
        case(
            "json-in-string",
            "application/json",
            r#"{"payload":"{\"password\":\"sec-nested-pass\",\"city\":\"ctl-nested-city\"}"}"#,
            &["sec-nested-pass"],
            &["ctl-nested-city"],
        ),
        case(
            "json-in-form",
            "application/x-www-form-urlencoded",
            "user=ctl-formjson-user&payload=%7B%22password%22%3A%22sec-formjson-pass%22%2C%22city%22%3A%22ctl-formjson-city%22%7D",
            &["sec-formjson-pass"],
            &["user=ctl-formjson-user", "%22ctl-formjson-city%22"],
        ),
        case(
            "json-as-form",
            "application/x-www-form-urlencoded",
            r#"{"password":"sec-asform-pass","user":"ctl-asform-user"}"#,
            &["sec-asform-pass"],
            &[r#""user":"ctl-asform-user""#],
        ),
        case(
            "form-as-json",
            "application/json",
            "user=ctl-asjson-user&password=sec-asjson-pass",
            &["sec-asjson-pass"],
            &["user=ctl-asjson-user"],
        ),
        case(
            "form-untyped",
            "",
            "password=sec-untyped-pass&user=ctl-untyped-user",
            &["sec-untyped-pass"],
            &["user=ctl-untyped-user"],
        ),
        case(
            "xml-as-text",
            "text/plain",
            "<a><token>sec-plainxml-token</token><b>ctl-plainxml-b</b></a>",
            &["sec-plainxml-token"],
            &["<b>ctl-plainxml-b</b>"],
        ),
    ];
    check(&cases, true).await;
}

// Regression: a body cut at the size limit inside a secret of an XML element, a GraphQL
// argument or JSON inside a form field left the start of the secret in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_inside_a_secret_hides_it_to_the_end() {
    // Each secret starts before the limit and ends after it.
    fn across_the_limit(head: &str, secret: &str, tail: &str) -> String {
        let pad = "p".repeat(LIMIT - 8 - head.len() - secret.len());
        format!("{}{pad}{secret}{}{tail}", &head, "Q".repeat(100))
    }
    let xml = across_the_limit(
        "<a><b>ctl-cutxml</b><pad>",
        "</pad><password>sec-cutxml",
        "</password></a>",
    );
    let graphql = across_the_limit(
        r#"{"query":"query { a(b: \"ctl-cutgql\", c: \""#,
        r#"\", token: \"sec-cutgql"#,
        r#"\") { id } }"}"#,
    );
    let form = across_the_limit(
        "a=ctl-cutform&payload=%7B%22c%22%3A%22",
        "%22%2C%22password%22%3A%22sec-cutform",
        "%22%7D",
    );
    let cases = [
        Case {
            tag: "cut-xml",
            content_type: "application/xml",
            body: xml,
            secrets: &["sec-cutxml", "QQQ"],
            controls: &["ctl-cutxml"],
        },
        Case {
            tag: "cut-graphql",
            content_type: "application/json",
            body: graphql,
            secrets: &["sec-cutgql", "QQQ"],
            controls: &["ctl-cutgql"],
        },
        Case {
            tag: "cut-form",
            content_type: "application/x-www-form-urlencoded",
            body: form,
            secrets: &["sec-cutform", "QQQ"],
            controls: &["a=ctl-cutform"],
        },
    ];
    check(&cases, true).await;
}

// Pins that a multipart form's parts never reach the database: a multipart body is
// described by its size and type, so a `name="password"` part is not stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_parts_are_not_stored() {
    let body = concat!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nann\r\n",
        "--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nsec-multipart-pass\r\n",
        "--XyZ--\r\n",
    );
    let cases = [case(
        "multipart",
        "multipart/form-data; boundary=XyZ",
        body,
        &["sec-multipart-pass"],
        &["bytes of multipart/form-data"],
    )];
    check(&cases, false).await;
}
