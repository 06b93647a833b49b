//! gRPC-web calls over the global `fetch` (browsers, workers, Node.js 18+).

use super::rpc_error;
use crate::framing::{self, CallError, Frame, FrameReader, Status, code};
use js_sys::{Promise, Reflect, Uint8Array};
use prost::Message;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, Request, RequestInit, Response};

#[wasm_bindgen]
extern "C" {
    /// `globalThis.fetch`, present in browsers and in Node.js.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(request: &Request) -> Promise;
}

/// Where and how to call: the server's base URL and the bearer token.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub base: String,
    pub token: Option<String>,
}

fn failure(code: u32, message: String) -> JsValue {
    rpc_error(&CallError { code, message })
}

fn describe(error: &JsValue) -> String {
    if let Some(error) = error.dyn_ref::<js_sys::Error>() {
        let mut text: String = error.message().into();
        // Node's fetch puts the socket error in `cause`.
        let cause = Reflect::get(error, &JsValue::from_str("cause")).unwrap_or(JsValue::UNDEFINED);
        if let Some(cause) = cause.dyn_ref::<js_sys::Error>() {
            text.push_str(": ");
            text.push_str(&String::from(cause.message()));
        }
        text
    } else {
        error.as_string().unwrap_or_else(|| String::from("fetch failed"))
    }
}

impl Endpoint {
    /// Sends one request; the HTTP response, once it is a 200 gRPC-web one.
    async fn send(&self, method: &str, message: &[u8], signal: Option<&AbortSignal>) -> Result<Response, JsValue> {
        let headers = Headers::new()?;
        headers.set("content-type", framing::CONTENT_TYPE)?;
        headers.set("accept", framing::CONTENT_TYPE)?;
        headers.set("x-grpc-web", "1")?;
        if let Some(token) = &self.token {
            headers.set("authorization", &format!("Bearer {token}"))?;
        }
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_headers(&headers);
        let body = Uint8Array::from(framing::encode_frame(message).as_slice());
        init.set_body(&body);
        if let Some(signal) = signal {
            init.set_signal(Some(signal));
        }
        let url = format!("{}/rustorium.v1.Store/{method}", self.base);
        let request = Request::new_with_str_and_init(&url, &init)
            .map_err(|e| failure(code::INTERNAL, format!("bad request to {url}: {}", describe(&e))))?;
        let response: Response = JsFuture::from(global_fetch(&request))
            .await
            .map_err(|e| failure(code::UNAVAILABLE, format!("{url}: {}", describe(&e))))?
            .unchecked_into();
        if response.status() != 200 {
            // gRPC-web maps errors to trailers; an HTTP error means the
            // request never reached the service (a proxy, a wrong URL).
            let status = response.status();
            let code = match status {
                400 => code::INTERNAL,
                401 => 16,
                403 => 7,
                404 => 12,
                429 | 502..=504 => code::UNAVAILABLE,
                _ => code::UNKNOWN,
            };
            return Err(failure(
                code,
                format!("HTTP {status} {} from {url}", response.status_text()),
            ));
        }
        Ok(response)
    }

    /// The gRPC status the response headers carry (a trailers-only answer).
    fn header_status(response: &Response) -> Result<Status, JsValue> {
        let mut status = Status::default();
        let headers = response.headers();
        for name in ["grpc-status", "grpc-message"] {
            if let Some(value) = headers.get(name)? {
                status.set(name, &value).map_err(|e| rpc_error(&e))?;
            }
        }
        Ok(status)
    }

    /// One unary call.
    pub(crate) async fn unary<Req: Message, Resp: Message + Default>(
        &self,
        method: &str,
        request: &Req,
    ) -> Result<Resp, JsValue> {
        let response = self.send(method, &request.encode_to_vec(), None).await?;
        let status = Self::header_status(&response)?;
        let buffer = JsFuture::from(response.array_buffer()?)
            .await
            .map_err(|e| failure(code::UNAVAILABLE, format!("reading the response: {}", describe(&e))))?;
        let body = Uint8Array::new(&buffer).to_vec();
        let message = framing::unary_response(status, &body).map_err(|e| rpc_error(&e))?;
        Resp::decode(message.as_slice())
            .map_err(|e| failure(code::INTERNAL, format!("undecodable {method} response: {e}")))
    }

    /// A server-streaming call: `on_message` gets each message in order and
    /// may stop the stream with an error. Ends with `Ok` when the server ends
    /// the stream with status OK.
    pub(crate) async fn stream<Req: Message, Resp: Message + Default>(
        &self,
        method: &str,
        request: &Req,
        signal: &AbortSignal,
        mut on_message: impl FnMut(Resp) -> Result<(), JsValue>,
    ) -> Result<(), JsValue> {
        let response = self.send(method, &request.encode_to_vec(), Some(signal)).await?;
        let status = Self::header_status(&response)?;
        let Some(body) = response.body() else {
            return status.into_result().map_err(|e| rpc_error(&e));
        };
        let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
        let mut frames = FrameReader::new();
        let result = loop {
            let chunk = match JsFuture::from(reader.read()).await {
                Ok(chunk) => chunk,
                Err(e) => break Err(failure(code::UNAVAILABLE, format!("stream broke: {}", describe(&e)))),
            };
            let done = Reflect::get(&chunk, &JsValue::from_str("done"))?
                .as_bool()
                .unwrap_or(true);
            if done {
                break frames
                    .finish()
                    .and_then(|()| {
                        if frames.finished() {
                            Ok(())
                        } else if status.code.is_some() {
                            status.clone().into_result()
                        } else {
                            Err(CallError {
                                code: code::UNAVAILABLE,
                                message: String::from("stream ended without a grpc-status"),
                            })
                        }
                    })
                    .map_err(|e| rpc_error(&e));
            }
            let value = Reflect::get(&chunk, &JsValue::from_str("value"))?;
            frames.push(&Uint8Array::new(&value).to_vec());
            let step: Result<bool, JsValue> = loop {
                match frames.next_frame() {
                    Ok(None) => break Ok(false),
                    Ok(Some(Frame::Message(bytes))) => {
                        let handled = Resp::decode(bytes.as_slice())
                            .map_err(|e| failure(code::INTERNAL, format!("undecodable {method} message: {e}")))
                            .and_then(&mut on_message);
                        if let Err(e) = handled {
                            break Err(e);
                        }
                    }
                    Ok(Some(Frame::Trailers(trailers))) => {
                        break trailers.into_result().map(|()| true).map_err(|e| rpc_error(&e));
                    }
                    Err(e) => break Err(rpc_error(&e)),
                }
            };
            match step {
                Ok(false) => {}
                Ok(true) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        // Cancelling an aborted stream rejects; awaiting it marks it handled.
        let _ = JsFuture::from(reader.cancel()).await;
        result
    }
}
