//! Routing gRPC calls by path to handlers, without generated service traits:
//! only the RPCs the client uses are routed; the rest answer UNIMPLEMENTED.

use crate::State;
use futures::future::BoxFuture;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::body::BoxBody;
use tonic::codec::ProstCodec;
use tonic::server::{Grpc, NamedService, StreamingService, UnaryService};
use tonic::transport::Body;
use tonic::{Status, Streaming};

pub type Answer<T> = BoxFuture<'static, Result<T, Status>>;

struct Unary<F>(Option<F>);

impl<Req, Resp, F> UnaryService<Req> for Unary<F>
where
    F: FnOnce(Req) -> Answer<Resp>,
    Resp: Send + 'static,
{
    type Response = Resp;
    type Future = BoxFuture<'static, Result<tonic::Response<Resp>, Status>>;

    fn call(&mut self, request: tonic::Request<Req>) -> Self::Future {
        let Some(handler) = self.0.take() else {
            return Box::pin(async { Err(Status::internal("handler called twice")) });
        };
        let answer = handler(request.into_inner());
        Box::pin(async move { answer.await.map(tonic::Response::new) })
    }
}

/// Decodes one `Req`, runs `handler`, encodes its answer.
pub async fn unary<Req, Resp, F>(request: http::Request<Body>, handler: F) -> http::Response<BoxBody>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: FnOnce(Req) -> Answer<Resp> + Send + 'static,
{
    Grpc::new(ProstCodec::<Resp, Req>::default())
        .unary(Unary(Some(handler)), request)
        .await
}

struct Bidi<F>(Option<F>);

impl<Req, Resp, F, S> StreamingService<Req> for Bidi<F>
where
    F: FnOnce(Streaming<Req>) -> S,
    S: futures::Stream<Item = Result<Resp, Status>> + Send + 'static,
    Resp: Send + 'static,
{
    type Response = Resp;
    type ResponseStream = S;
    type Future = BoxFuture<'static, Result<tonic::Response<S>, Status>>;

    fn call(&mut self, request: tonic::Request<Streaming<Req>>) -> Self::Future {
        let Some(handler) = self.0.take() else {
            return Box::pin(async { Err(Status::internal("handler called twice")) });
        };
        let stream = handler(request.into_inner());
        Box::pin(async move { Ok(tonic::Response::new(stream)) })
    }
}

pub async fn streaming<Req, Resp, F, S>(request: http::Request<Body>, handler: F) -> http::Response<BoxBody>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: FnOnce(Streaming<Req>) -> S + Send + 'static,
    S: futures::Stream<Item = Result<Resp, Status>> + Send + 'static,
{
    Grpc::new(ProstCodec::<Resp, Req>::default())
        .streaming(Bidi(Some(handler)), request)
        .await
}

pub fn unimplemented(path: &str) -> http::Response<BoxBody> {
    Status::unimplemented(format!("the test server does not implement {path}")).to_http()
}

/// A routed gRPC service: `NAME` is the protobuf service, `route` the handler table.
pub trait Route: Clone + Send + 'static {
    const NAME: &'static str;
    fn route(&self, method: &str, request: http::Request<Body>) -> Option<BoxFuture<'static, http::Response<BoxBody>>>;
    fn state(&self) -> &Arc<State>;
}

#[derive(Clone)]
pub struct Service<R>(pub R);

impl<R: Route> NamedService for Service<R> {
    const NAME: &'static str = R::NAME;
}

impl<R: Route> tower::Service<http::Request<Body>> for Service<R> {
    type Response = http::Response<BoxBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path().trim_start_matches('/').to_owned();
        let method = path.rsplit('/').next().unwrap_or_default().to_owned();
        self.0.state().record(path.clone());
        match self.0.route(&method, request) {
            Some(answer) => Box::pin(async move {
                let response = answer.await;
                if std::env::var_os("TIKV_TEST_SERVER_TRACE").is_some() {
                    eprintln!("tikv-test-server: answered {path}");
                }
                Ok(response)
            }),
            None => Box::pin(async move { Ok(unimplemented(&path)) }),
        }
    }
}

fn spawn_server<F>(state: &Arc<State>, store: u64, listener: TcpListener, build: F) -> oneshot::Sender<()>
where
    F: FnOnce(tonic::transport::Server) -> tonic::transport::server::Router + Send + 'static,
{
    let (stop, stopped) = oneshot::channel::<()>();
    let state = state.clone();
    tokio::spawn(async move {
        let incoming = async_stream(listener, state, store);
        let router = build(tonic::transport::Server::builder());
        let _ = router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await;
    });
    stop
}

fn async_stream(
    listener: TcpListener,
    state: Arc<State>,
    store: u64,
) -> impl futures::Stream<Item = std::io::Result<crate::conn::KillableStream>> {
    futures::stream::unfold((listener, state), move |(listener, state)| async move {
        let accepted = listener.accept().await.map(|(stream, _)| {
            if std::env::var_os("TIKV_TEST_SERVER_TRACE").is_some() {
                eprintln!("tikv-test-server: accepted a connection on store {store}");
            }
            let _ = stream.set_nodelay(true);
            state.kill_switches[&store].wrap(stream)
        });
        Some((accepted, (listener, state)))
    })
}

pub fn serve_pd(state: Arc<State>, listener: TcpListener) -> oneshot::Sender<()> {
    let pd = Service(crate::pd::Pd(state.clone()));
    let keyspace = Service(crate::pd::Keyspace(state.clone()));
    spawn_server(&state, crate::PD_STORE, listener, move |mut server| {
        server.add_service(pd).add_service(keyspace)
    })
}

pub fn serve_tikv(state: Arc<State>, store: u64, listener: TcpListener) -> oneshot::Sender<()> {
    let tikv = Service(crate::tikv::Tikv {
        state: state.clone(),
        store,
    });
    spawn_server(&state, store, listener, move |mut server| server.add_service(tikv))
}

/// Boxes an async answer.
pub fn later<T, Fut>(future: Fut) -> Answer<T>
where
    Fut: Future<Output = Result<T, Status>> + Send + 'static,
{
    Box::pin(future)
}
