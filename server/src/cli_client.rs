//! What the command line needs to talk to a running server: where it is,
//! the bearer token, and one JSON call.

use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The server and token options shared by the remote subcommands.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// Base URL of the server (default: `http://` and the server's own
    /// `DEALFLOW_LISTEN` when set, so a shell that started the server
    /// reaches it; otherwise `http://127.0.0.1:8080`).
    #[arg(long, env = "DEALFLOW_URL", global = true)]
    pub server: Option<String>,
    /// Bearer token (an admin's; for policies, a branch manager's will do).
    #[arg(long, env = "DEALFLOW_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

impl Remote {
    /// A client for the server, with the token from `--token`,
    /// `DEALFLOW_TOKEN` or else `DEALFLOW_ADMIN_TOKEN`.
    pub fn client(&self, who: &str) -> Result<Api, String> {
        let token = self
            .token
            .clone()
            .or_else(|| std::env::var("DEALFLOW_ADMIN_TOKEN").ok())
            .ok_or_else(|| format!("set DEALFLOW_TOKEN (or --token) to {who} token"))?;
        let base = self.server.clone().unwrap_or_else(|| {
            let listen =
                std::env::var("DEALFLOW_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
            format!("http://{listen}")
        });
        Ok(Api {
            base: base.trim_end_matches('/').to_string(),
            token,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }
}

/// A tiny JSON client for the server.
pub struct Api {
    /// Base URL.
    base: String,
    /// Bearer token.
    token: String,
    /// HTTP client.
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Api {
    /// Sends one request; a non-2xx answer is an error with its body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .map_err(|e| e.to_string())?;
        let res = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("{}: {e}", self.base))?;
        let status = res.status();
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let error = &v["error"];
        match (error["code"].as_str(), error["message"].as_str()) {
            _ if status.is_success() => Ok(v),
            (Some(code), Some(message)) => Err(format!("{status} {code}: {message}")),
            _ => Err(format!("{status}: {v}")),
        }
    }
}

/// One progress line of a long command, on stderr: rewritten in place on a
/// terminal, one line each otherwise (a log).
pub fn progress_line(command: &str, line: &str) {
    use std::io::{IsTerminal, Write};
    let mut err = std::io::stderr().lock();
    let line = line.trim_end();
    let _ = if err.is_terminal() {
        write!(err, "\r\x1b[2K{command}: {line}")
    } else {
        writeln!(err, "{command}: {line}")
    };
    let _ = err.flush();
}
