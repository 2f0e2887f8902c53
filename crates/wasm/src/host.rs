//! The JavaScript side: the host object the shim builds, the global timers, and `fetch`
//! (its answer read through gloo-net). Every import that can throw is bound with
//! `catch`, so a JS exception becomes an `Err` here instead of unwinding through wasm.

use std::path::PathBuf;

use js_sys::{Function, Promise, Reflect};
use opencode_sync_core::api::{Method, Outcome, Request, classify};
use opencode_sync_core::paths::Environment;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use opencode_sync_core::delivery::Fs;
use opencode_sync_core::plugin_settings::Files;

#[wasm_bindgen]
extern "C" {
    /// `{ readFile(path), listDir(path), writeFile(path, text), overwrite(path, text),
    /// rename(from, to),
    /// remove(path), env(name), homedir(), pid(), processAlive(pid), now(), random(),
    /// toast(message, variant), log(level, message) }`, built by the shim; each method
    /// swallows its own errors.
    #[derive(Debug, Clone)]
    pub type Host;

    #[wasm_bindgen(method, catch, js_name = readFile)]
    fn read_file(this: &Host, path: &str) -> Result<Option<String>, JsValue>;
    #[wasm_bindgen(method, catch, js_name = listDir)]
    fn list_dir(this: &Host, path: &str) -> Result<Option<Vec<String>>, JsValue>;
    #[wasm_bindgen(method, catch, js_name = writeFile)]
    fn write_file(this: &Host, path: &str, text: &str) -> Result<bool, JsValue>;
    #[wasm_bindgen(method, catch, js_name = overwrite)]
    fn overwrite_file(this: &Host, path: &str, text: &str) -> Result<bool, JsValue>;
    #[wasm_bindgen(method, catch, js_name = rename)]
    fn rename_file(this: &Host, from: &str, to: &str) -> Result<bool, JsValue>;
    #[wasm_bindgen(method, catch, js_name = remove)]
    fn remove_file(this: &Host, path: &str) -> Result<bool, JsValue>;
    #[wasm_bindgen(method, catch, js_name = env)]
    fn env_var(this: &Host, name: &str) -> Result<Option<String>, JsValue>;
    #[wasm_bindgen(method, catch, js_name = homedir)]
    fn home(this: &Host) -> Result<Option<String>, JsValue>;
    #[wasm_bindgen(method, catch, js_name = pid)]
    fn process_id(this: &Host) -> Result<Option<u32>, JsValue>;
    #[wasm_bindgen(method, catch, js_name = processAlive)]
    fn process_alive(this: &Host, pid: u32) -> Result<bool, JsValue>;
    #[wasm_bindgen(method, catch, js_name = random)]
    fn random_unit(this: &Host) -> Result<f64, JsValue>;
    #[wasm_bindgen(method, catch, js_name = toast)]
    fn show_toast(this: &Host, message: &str, variant: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = log)]
    fn write_log(this: &Host, level: &str, message: &str) -> Result<(), JsValue>;

    #[wasm_bindgen(catch, js_name = setTimeout)]
    fn set_timeout(callback: &Function, ms: f64) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_name = clearTimeout)]
    fn clear_timeout_js(id: &JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(catch, js_name = fetch)]
    fn fetch_with_init(url: &str, init: &web_sys::RequestInit) -> Result<Promise, JsValue>;
}

impl Host {
    pub fn read(&self, path: &str) -> Option<String> {
        self.read_file(path).ok().flatten()
    }

    pub fn random(&self) -> f64 {
        self.random_unit()
            .ok()
            .filter(|r| r.is_finite())
            .unwrap_or(0.5)
    }

    /// This process's id, when the host has one.
    pub fn pid(&self) -> Option<u32> {
        self.process_id().ok().flatten()
    }

    /// Whether a process runs; `true` when the host cannot tell.
    pub fn pid_alive(&self, pid: u32) -> bool {
        self.process_alive(pid).unwrap_or(true)
    }

    pub fn toast(&self, message: &str, variant: &str) {
        let _ = self.show_toast(message, variant);
    }

    pub fn log(&self, level: &str, message: &str) {
        let _ = self.write_log(level, message);
    }
}

impl Files for Host {
    fn read(&self, path: &str) -> Option<String> {
        Host::read(self, path)
    }
}

impl Fs for Host {
    fn read(&self, path: &str) -> Option<String> {
        Host::read(self, path)
    }
    fn list(&self, dir: &str) -> Option<Vec<String>> {
        self.list_dir(dir).ok().flatten()
    }
    fn write(&self, path: &str, text: &str) -> bool {
        self.write_file(path, text).unwrap_or(false)
    }
    fn overwrite(&self, path: &str, text: &str) -> bool {
        self.overwrite_file(path, text).unwrap_or(false)
    }
    fn rename(&self, from: &str, to: &str) -> bool {
        self.rename_file(from, to).unwrap_or(false)
    }
    fn remove(&self, path: &str) -> bool {
        self.remove_file(path).unwrap_or(false)
    }
}

impl Environment for Host {
    fn var(&self, name: &str) -> Option<String> {
        self.env_var(name).ok().flatten().filter(|v| !v.is_empty())
    }

    fn home_dir(&self) -> Option<PathBuf> {
        self.home()
            .ok()
            .flatten()
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    }
}

/// Calls `callback` after `ms`. With `keep_alive` false the timer does not keep Node or
/// Bun running (a retry backoff must never delay the host's exit).
pub fn timer(callback: &Function, ms: f64, keep_alive: bool) -> Option<JsValue> {
    let id = set_timeout(callback, ms.max(0.0)).ok()?;
    if !keep_alive
        && let Ok(unref) = Reflect::get(&id, &JsValue::from_str("unref"))
        && let Some(unref) = unref.dyn_ref::<Function>()
    {
        let _ = unref.call0(&id);
    }
    Some(id)
}

pub fn clear_timer(id: &JsValue) {
    let _ = clear_timeout_js(id);
}

/// Resolves after `ms` without holding the host open.
pub async fn sleep(ms: u64) {
    let promise = Promise::new(&mut |resolve, _reject| {
        if timer(&resolve, ms as f64, false).is_none() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// How long one request may take before it is abandoned (and retried).
const REQUEST_TIMEOUT_MS: f64 = 30_000.0;

/// Sends one request through the host's global `fetch` and classifies the answer with
/// the core's rules. A request that cannot be made or times out is a retry.
pub async fn send(request: &Request) -> Outcome {
    match fetch(request).await {
        Ok((status, retry_after, body)) => {
            classify(request.route, status, retry_after.as_deref(), &body)
        }
        Err(reason) => Outcome::Retry {
            after_ms: None,
            reason,
        },
    }
}

/// `fetch(url, init)`, with a plain object for the headers and an `AbortController` that
/// a timer fires: gloo-net's `Request::send` builds a `Request` and passes that, which
/// undici (Node's fetch) copies into a second `Request`, each with an abort signal of its
/// own, and `AbortSignal.timeout` costs a transferable signal more: together a third of
/// the CPU of a request in Node 20. The answer is read through gloo-net's `Response`.
async fn fetch(request: &Request) -> Result<(u16, Option<String>, String), String> {
    let init = web_sys::RequestInit::new();
    init.set_method(match request.method {
        Method::Get => "GET",
        Method::Post => "POST",
    });
    let headers = js_sys::Object::new();
    for (name, value) in &request.headers {
        let _ = Reflect::set(
            &headers,
            &JsValue::from_str(name),
            &JsValue::from_str(value),
        );
    }
    init.set_headers(&headers);
    // A redirect is never followed: the payload (and, to the same origin, the key) would
    // go somewhere the user did not configure. Its 3xx is classified instead.
    init.set_redirect(web_sys::RequestRedirect::Manual);
    if let Some(body) = &request.body {
        init.set_body(&JsValue::from_str(body));
    }
    let controller = web_sys::AbortController::new().ok();
    let deadline = controller.as_ref().and_then(|controller| {
        init.set_signal(Some(&controller.signal()));
        let abort = Reflect::get(controller, &JsValue::from_str("abort")).ok()?;
        let abort = abort.dyn_ref::<Function>()?.bind0(controller);
        timer(&abort, REQUEST_TIMEOUT_MS, false)
    });
    let answer = read_answer(fetch_with_init(&request.url, &init)).await;
    if let Some(deadline) = deadline {
        clear_timer(&deadline);
    }
    answer
}

async fn read_answer(
    promise: Result<Promise, JsValue>,
) -> Result<(u16, Option<String>, String), String> {
    let network_error = |e: JsValue| format!("network error: {}", describe(&e));
    let response = JsFuture::from(promise.map_err(network_error)?)
        .await
        .map_err(network_error)?;
    let response = gloo_net::http::Response::from(
        response
            .dyn_into::<web_sys::Response>()
            .map_err(|_| "fetch answered with something that is not a Response".to_owned())?,
    );
    // A runtime that filters the answer to a manual redirect as the fetch standard does
    // (an "opaqueredirect" with status 0) still reports it as one.
    let status = match response.status() {
        0 => 307,
        status => status,
    };
    let retry_after = response.headers().get("retry-after");
    let body = response
        .text()
        .await
        .map_err(|e| format!("network error reading the answer: {e}"))?;
    Ok((status, retry_after, body))
}

/// A thrown JS value as text: an `Error`'s message (with its cause's, as undici puts the
/// reason there: "fetch failed: connect ECONNREFUSED ..."), else its string form.
fn describe(error: &JsValue) -> String {
    let message = |value: &JsValue| {
        Reflect::get(value, &JsValue::from_str("message"))
            .ok()
            .and_then(|m| m.as_string())
    };
    match message(error) {
        Some(text) => match Reflect::get(error, &JsValue::from_str("cause"))
            .ok()
            .filter(|c| c.is_object())
            .and_then(|c| message(&c))
        {
            Some(cause) => format!("{text}: {cause}"),
            None => text,
        },
        None => error.as_string().unwrap_or_else(|| format!("{error:?}")),
    }
}
