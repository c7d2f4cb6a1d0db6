//! Extractors that reject with the API error shape: JSON bodies (strict,
//! naming the offending field), optional bodies, query strings, path
//! parameters, the caller behind the bearer token or the session cookie
//! (with the CSRF check for cookie-authenticated writes), and `If-Match`.
//! Every refused field is named in the message and in `details.field`.

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, ETAG, IF_MATCH};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::ApiError;
use super::wording::{refusal, strip_location, Place};
use super::AppState;
use crate::auth::{hash_token, secrets_match, Principal};
use crate::service::Credential;

/// A JSON request body, parsed strictly.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        check_media_type(&req)?;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(Body)
    }
}

/// A JSON body every field of which is optional: no body at all (and no
/// `Content-Type`), or `null`, reads as `T::default()`, anything else as
/// [`Body`].
pub struct OptionalBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let media_type = check_media_type(&req);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        let text = bytes.trim_ascii();
        if text.is_empty() || text == b"null" {
            return Ok(OptionalBody(T::default()));
        }
        media_type?;
        parse_json(&bytes).map(OptionalBody)
    }
}

/// Refuses a body declared as anything but JSON (none declared is fine).
fn check_media_type(req: &Request) -> Result<(), ApiError> {
    let Some(ct) = req.headers().get(CONTENT_TYPE) else {
        return Ok(());
    };
    let json = ct
        .to_str()
        .map(|v| {
            let mime = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false);
    if json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ))
    }
}

fn body_rejection(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than the 1 MiB limit",
        )
    } else {
        ApiError::bad_request("bad_request", "the body could not be read")
    }
}

/// True when `bytes` is one well-formed JSON value.
fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

/// Parses a JSON body. A malformed one is 400 `invalid_json` with where it
/// broke; a refused field is 400 `invalid_body` whose message names the
/// field and says what it must be, with the field in `details.field` (and
/// serde's path of the value in `details.path`).
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body is empty; send a JSON object",
        ));
    }
    // Serde lets a struct be read from an array too; the contract is objects.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        let code = if is_json(bytes) {
            "invalid_body"
        } else {
            "invalid_json"
        };
        return Err(ApiError::bad_request(
            code,
            "the body must be a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => {
            de.end()
                .map_err(|e| malformed("there is more after the JSON object", &e))?;
            Ok(v)
        }
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // serde_json reports some type errors (a number for an enum) as
            // syntax errors: the body is malformed JSON only if it does not
            // parse as JSON at all.
            if (inner.is_syntax() || inner.is_eof()) && !is_json(bytes) {
                return Err(malformed("the body is not valid JSON", &inner));
            }
            let r = refusal(Place::Body, &path, &inner.to_string());
            Err(ApiError::bad_request("invalid_body", r.message)
                .with_details(serde_json::json!({ "field": r.field, "path": path })))
        }
    }
}

/// 400 `invalid_json`, saying where the JSON broke.
fn malformed(what: &str, e: &serde_json::Error) -> ApiError {
    let why = strip_location(&e.to_string()).to_string();
    ApiError::bad_request(
        "invalid_json",
        format!("{what} (line {}, column {}: {why})", e.line(), e.column()),
    )
    .with_details(serde_json::json!({ "line": e.line(), "column": e.column() }))
}

/// Query parameters, parsed strictly; a refused one is 400 `invalid_query`
/// naming it in the message and in `details.field`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or("")).map(Query)
    }
}

/// Parses a query string as [`Query`] does.
fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let r = refusal(Place::Query, &path, &e.into_inner().to_string());
        ApiError::bad_request("invalid_query", r.message)
            .with_details(serde_json::json!({ "field": r.field }))
    })
}

/// Path parameters; one that does not parse is 400 `invalid_path` naming
/// the parameter (`version` must be a whole number).
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let e = match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(p) => return Ok(Path(p.0)),
            Err(e) => e,
        };
        let PathRejection::FailedToDeserializePathParams(failed) = e else {
            return Err(ApiError::bad_request("invalid_path", e.body_text()));
        };
        // Tuple parameters are reported by position: name them.
        let names: Vec<String> = RawPathParams::from_request_parts(parts, state)
            .await
            .map(|raw| raw.iter().map(|(k, _)| k.to_string()).collect())
            .unwrap_or_default();
        let name_at = |i: usize| names.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
        let (field, value, expected) = match failed.kind() {
            ErrorKind::ParseErrorAtKey {
                key,
                value,
                expected_type,
            } => (key.clone(), value.clone(), *expected_type),
            ErrorKind::ParseErrorAtIndex {
                index,
                value,
                expected_type,
            } => (name_at(*index), value.clone(), *expected_type),
            ErrorKind::ParseError {
                value,
                expected_type,
            } => (name_at(0), value.clone(), *expected_type),
            ErrorKind::InvalidUtf8InPathParam { key } => {
                return Err(path_error(key, format!("`{key}` must be UTF-8 text")));
            }
            _ => {
                return Err(ApiError::bad_request("invalid_path", failed.body_text()));
            }
        };
        let words = match expected.rsplit("::").next().unwrap_or(expected) {
            "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more",
            "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
            other => other,
        };
        Err(path_error(
            &field,
            format!("`{field}` must be {words}, not `{value}`"),
        ))
    }
}

/// A day in a path segment (`YYYY-MM-DD`), or 400 `invalid_path` naming it.
pub fn path_day(field: &str, value: &str) -> Result<chrono::NaiveDate, ApiError> {
    crate::domain::time::parse_day(value).ok_or_else(|| {
        path_error(
            field,
            format!(
                "`{field}` must be {}, not `{value}`",
                crate::domain::time::DAY_EXPECTED
            ),
        )
    })
}

fn path_error(field: &str, message: String) -> ApiError {
    ApiError::bad_request("invalid_path", message)
        .with_details(serde_json::json!({ "field": field }))
}

/// The name of the session cookie (`POST /v1/sessions` sets it).
pub const SESSION_COOKIE: &str = "dealflow_session";

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The authenticated caller.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Authenticated::from_request_parts(parts, state)
            .await
            .map(|a| Caller(a.principal))
    }
}

/// The authenticated caller and how they authenticated: a bearer token
/// (`Authorization: Bearer <token>`), or the session cookie. A request
/// made with the cookie that may change something (POST, PUT, PATCH,
/// DELETE) must also pass the CSRF check ([`check_csrf`]).
pub struct Authenticated {
    /// Who is calling.
    pub principal: Principal,
    /// What they authenticated with (event streams re-check it).
    pub credential: Credential,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(header) = parts.headers.get(AUTHORIZATION) {
            let token = header
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "the Authorization header must be `Bearer <token>`",
                    )
                })?;
            return Ok(Authenticated {
                principal: state.services.authenticate(token)?,
                credential: Credential::Token(hash_token(token)),
            });
        }
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send `Authorization: Bearer <token>`, or sign in (`POST /v1/sessions`) and send its cookie",
            ));
        };
        let session = state.services.authenticate_session(id)?;
        if !parts.method.is_safe() {
            check_csrf(&parts.headers, Some(&session.csrf))?;
        }
        Ok(Authenticated {
            principal: session.principal,
            credential: Credential::Session(session.hash),
        })
    }
}

/// The header a cookie-authenticated write carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Refuses a cross-site request (403 `csrf_failed`): `Origin`, when sent,
/// must be this server's own (`http://` or `https://` and the `Host` the
/// request was sent to), `Sec-Fetch-Site`, when sent, must say
/// `same-origin`, and with `csrf` the `X-CSRF-Token` header must be that
/// session's token. Browsers send `Origin` with every write, so a page of
/// another site is refused even before the token is looked at.
pub fn check_csrf(headers: &HeaderMap, csrf: Option<&str>) -> Result<(), ApiError> {
    let refuse = |message: String, field: &str| {
        ApiError::new(StatusCode::FORBIDDEN, "csrf_failed", message)
            .with_details(serde_json::json!({ "field": field }))
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = header("origin") {
        let host = header("host").unwrap_or_default();
        let same = !host.is_empty()
            && [format!("http://{host}"), format!("https://{host}")]
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin));
        if !same {
            return Err(refuse(
                format!(
                    "a request from another site (Origin `{origin}`) cannot use this session; \
                     only the console served by this server can"
                ),
                "Origin",
            ));
        }
    }
    if let Some(site) = header("sec-fetch-site") {
        if site != "same-origin" {
            return Err(refuse(
                format!("the browser says this request comes from another site (Sec-Fetch-Site `{site}`)"),
                "Sec-Fetch-Site",
            ));
        }
    }
    if let Some(expected) = csrf {
        match header(CSRF_HEADER) {
            Some(sent) if secrets_match(sent, expected) => {}
            Some(_) => {
                return Err(refuse(
                    "the X-CSRF-Token header does not match this session's; reload the console"
                        .into(),
                    "X-CSRF-Token",
                ))
            }
            None => {
                return Err(refuse(
                    "a change made with the session cookie needs the X-CSRF-Token header \
                     (the csrf_token that POST /v1/sessions and GET /v1/sessions/current return)"
                        .into(),
                    "X-CSRF-Token",
                ))
            }
        }
    }
    Ok(())
}

/// Whether the client asked for the work to run as a job: `Prefer:
/// respond-async` (RFC 7240), or `?async=true` in the query.
pub struct RespondAsync(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for RespondAsync {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let preferred = parts
            .headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim().eq_ignore_ascii_case("respond-async"));
        let query = parts.uri.query().unwrap_or_default();
        let mut asked = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if k == "async" {
                asked = Some(match v.as_ref() {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(ApiError::bad_request(
                            "invalid_query",
                            format!("async must be true or false, not `{other}`"),
                        )
                        .with_details(serde_json::json!({"field": "async"})))
                    }
                });
            }
        }
        Ok(RespondAsync(asked.unwrap_or(preferred)))
    }
}

/// The version a write expects, from `If-Match` (`3`, `"3"` or `W/"3"`).
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get(IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = v.to_str().unwrap_or("").trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        let bare = text.trim_start_matches("W/").trim_matches('"');
        bare.parse::<u64>().map(|n| IfMatch(Some(n))).map_err(|_| {
            ApiError::bad_request(
                "invalid_header",
                format!("If-Match must be a resource version such as \"3\", not `{text}`"),
            )
        })
    }
}

/// A JSON response carrying the resource version as its `ETag`.
pub struct Versioned<T>(pub StatusCode, pub u64, pub T);

impl<T: Serialize> IntoResponse for Versioned<T> {
    fn into_response(self) -> Response {
        let mut res = (self.0, axum::Json(self.2)).into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", self.1)) {
            res.headers_mut().insert(ETAG, v);
        }
        res
    }
}
